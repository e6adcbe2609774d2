/**
 * Option parsers for commander: each checks a value once, on entry, and throws a BriefdbError
 * with its code (docs/architecture.md, "Exit codes"), so bad input never reaches a database.
 */
import { MAX_KEY_LENGTH } from "../core/ledger/text-input.js";
import { BriefdbError } from "../errors.js";
import { durationMs, formatDuration } from "../core/duration.js";

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

/**
 * A user id (`<user>`): any non-empty text, checked before connecting — an empty one names nobody,
 * and finding that out must not cost a connection or look like "no such user" (exit 3).
 */
export function userIdArgument(value: string): string {
  if (value === "") throw new BriefdbError("USAGE", "a user id is required, not an empty string");
  return value;
}


/** An idempotency key (--key): 1 to 200 characters, checked before connecting. */
export function idempotencyKey(value: string): string {
  if (value === "" || value.length > MAX_KEY_LENGTH) {
    throw new BriefdbError("USAGE", `an idempotency key is 1 to ${MAX_KEY_LENGTH} characters`);
  }
  return value;
}

/** A brief id (--brief): not empty (leave the flag out for none), checked before connecting. */
export function briefIdOption(value: string): string {
  if (value === "") throw new BriefdbError("USAGE", "a brief id is not empty (leave --brief out for none)");
  return value;
}

/**
 * The address `serve --host` listens on: a name or an IP address ([::1] or ::1), never empty —
 * Node reads "" as every interface, which nobody means by leaving the value out.
 */
export function listenHost(value: string): string {
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (!/^[A-Za-z0-9._:%-]+$/.test(bare)) {
    throw new BriefdbError("USAGE", `--host takes a host name or an IP address, not "${value}"`, "for every interface say 0.0.0.0 or ::");
  }
  return bare;
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(flag: string, choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if ((choices as readonly string[]).includes(value)) return value as T;
    throw new BriefdbError("USAGE", `${flag} takes one of ${choices.join(", ")}, not "${value}"`);
  };
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * A moment in the past: a span back from now in the one duration grammar (`500ms`, `90s`, `15m`,
 * `24h`, `7d`, `2w`; a bare number is seconds) or an ISO 8601
 * date (`2025-06-01`, UTC) or date-time (`2025-06-01T12:00`, local time unless it says `Z` or an
 * offset). Between 1970 and now: a later moment could only ever select nothing.
 */
export function pastMoment(flag: string, now: () => number = Date.now): (value: string) => Date {
  return (value: string) => {
    const text = value.trim();
    // a bare number is seconds, as everywhere; eight digits that read as a day (20250601) are
    // far more likely a date without its dashes than 234 days of seconds
    const compact = /^(\d{4})(\d{2})(\d{2})$/.exec(text);
    const day = compact === null ? undefined : isoDate(`${compact[1]}-${compact[2]}-${compact[3]}`);
    if (compact !== null && day !== undefined && day.getTime() >= 0 && day.getTime() <= now()) {
      throw new BriefdbError(
        "USAGE",
        `${flag} "${value}" reads as ${text} seconds: for the date, write ${compact[1]}-${compact[2]}-${compact[3]}`,
        "a span takes its unit (15m, 24h, 7d); a date, its dashes",
      );
    }
    const moment = spanBack(text, now()) ?? isoDate(text);
    const bad = `${flag} takes a span back from now (15m, 24h, 7d) or an ISO date (2025-06-01, 2025-06-01T12:00Z)`;
    if (moment === undefined) throw new BriefdbError("USAGE", `${bad}, not "${value}"`);
    if (moment.getTime() > now()) throw new BriefdbError("USAGE", `${flag} is in the future: "${value}"`);
    // A span so long the Date is invalid (NaN) reaches back before 1970 too.
    if (!(moment.getTime() >= 0)) throw new BriefdbError("USAGE", `${flag} reaches back before 1970: "${value}"`);
    return moment;
  };
}

function spanBack(text: string, now: number): Date | undefined {
  const span = durationMs(text);
  return span !== undefined && span > 0 ? new Date(now - span) : undefined;
}

function isoDate(text: string): Date | undefined {
  const match = ISO_DATE.exec(text);
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Date.parse rolls 2025-02-30 over to March; a day that does not exist is a typo.
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) return undefined;
  const parsed = Date.parse(text.replace(" ", "T"));
  return Number.isNaN(parsed) ? undefined : new Date(parsed);
}

/** A positive number of milliseconds, decimals allowed (a p95 budget: 5, 0.5). */
export function positiveMs(flag: string): (value: string) => number {
  return (value: string) => {
    const text = value.trim();
    const parsed = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
    if (!(parsed > 0) || !Number.isFinite(parsed)) throw new BriefdbError("USAGE", `${flag} takes a positive number of milliseconds, not "${value}"`);
    return parsed;
  };
}

/** A duration in the one grammar (500ms, 30s, 2m, 1h, 1d; a bare number is seconds), above 0 and up to `maxMs`. */
export function duration(flag: string, maxMs = 3_600_000): (value: string) => number {
  return (value: string) => {
    const ms = durationMs(value);
    if (ms === undefined || ms <= 0 || ms > maxMs) {
      throw new BriefdbError("USAGE", `${flag} takes a duration such as 30s, 2m or 500ms (at most ${formatDuration(maxMs)}), not "${value}"`);
    }
    return ms;
  };
}
