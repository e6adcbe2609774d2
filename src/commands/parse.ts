/**
 * Option parsers for commander: each checks a value once, on entry, and throws a BriefdbError
 * with the SPEC §5 code, so bad input never reaches a database.
 */
import { BriefdbError } from "../errors.js";

/** A whole number in digits within [min, max], for counts, sizes, samples and timeouts. */
export function wholeNumber(flag: string, min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const text = value.trim();
    const parsed = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
      throw new BriefdbError("USAGE", `${flag} takes a whole number ${range}, not "${value}"`);
    }
    return parsed;
  };
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(flag: string, choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if ((choices as readonly string[]).includes(value)) return value as T;
    throw new BriefdbError("USAGE", `${flag} takes one of ${choices.join(", ")}, not "${value}"`);
  };
}
