/** Token amounts: a positive whole number written in digits, at most 2^53−1 (docs/architecture.md, "Input"). */
import { BriefdbError } from "../../errors.js";

export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER;

/** Parses an amount typed by a person; anything else is INVALID_AMOUNT. */
export function parseAmount(text: string): number {
  if (!/^\d+$/.test(text)) throw invalid(text); // digits only: no sign, space, point or exponent
  // compare as digits so that 2^53 and beyond are refused, not rounded
  const digits = text.replace(/^0+(?=\d)/, "");
  if (digits.length > 16 || (digits.length === 16 && digits > String(MAX_AMOUNT))) throw invalid(text);
  return assertAmount(Number(digits));
}

/** Checks an amount handed to the library. */
export function assertAmount(amount: number): number {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw invalid(String(amount));
  return amount;
}

function invalid(text: string): BriefdbError {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return new BriefdbError(
    "INVALID_AMOUNT",
    `invalid amount "${shown}": an amount is a positive whole number in digits, at most ${MAX_AMOUNT}`,
  );
}
