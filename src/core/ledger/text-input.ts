/**
 * The text a token operation stores (user id, reason, brief id, idempotency key), checked on entry
 * the same way for deducts, credits and holds: bad text is USAGE (exit 2) and changes nothing,
 * never a driver error from the database (PostgreSQL text cannot hold a NUL byte).
 */
import { BriefdbError } from "../../errors.js";

/** Longest idempotency key (the CLI checks the same bound before connecting: commands/parse.ts). */
export const MAX_KEY_LENGTH = 200;

export interface StoredText {
  readonly userId: string;
  readonly reason: string;
  readonly briefId?: string | null | undefined;
  readonly idempotencyKey?: string | null | undefined;
}

/**
 * Checks what an operation will store; resolves to the idempotency key, or null without one. The
 * types are checked too, for JavaScript callers: a key given as a number is USAGE like any other
 * bad input, not a TypeError. null, as undefined, means none.
 */
export function checkStoredText({ userId, reason, briefId, idempotencyKey }: StoredText): string | null {
  if (typeof userId !== "string" || userId === "") throw new BriefdbError("USAGE", "a user id is required");
  noNul("the user id", userId);
  if (typeof reason !== "string") throw new BriefdbError("USAGE", "a reason is text");
  noNul("the reason", reason);
  if (briefId !== undefined && briefId !== null) {
    if (typeof briefId !== "string") throw new BriefdbError("USAGE", `a brief id is text, not ${describeType(briefId)}`);
    if (briefId === "") throw new BriefdbError("USAGE", "a brief id is not empty (leave --brief out for none)");
    noNul("the brief id", briefId);
  }
  if (idempotencyKey === undefined || idempotencyKey === null) return null;
  if (typeof idempotencyKey !== "string") {
    throw new BriefdbError("USAGE", `an idempotency key is text, not ${describeType(idempotencyKey)}`, "pass it as a string, e.g. String(key)");
  }
  if (idempotencyKey === "" || idempotencyKey.length > MAX_KEY_LENGTH) {
    throw new BriefdbError("USAGE", `an idempotency key is 1 to ${MAX_KEY_LENGTH} characters`);
  }
  noNul("the idempotency key", idempotencyKey);
  return idempotencyKey;
}

function describeType(value: unknown): string {
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

function noNul(what: string, text: string): void {
  if (text.includes("\u0000")) throw new BriefdbError("USAGE", `${what} contains a NUL character (\\0), which a database cannot store as text`);
}
