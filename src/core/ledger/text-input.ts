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
  readonly briefId?: string | undefined;
  readonly idempotencyKey?: string | undefined;
}

/** Checks what an operation will store; resolves to the idempotency key, or null without one. */
export function checkStoredText({ userId, reason, briefId, idempotencyKey }: StoredText): string | null {
  if (typeof userId !== "string" || userId === "") throw new BriefdbError("USAGE", "a user id is required");
  noNul("the user id", userId);
  if (typeof reason !== "string") throw new BriefdbError("USAGE", "a reason is text");
  noNul("the reason", reason);
  if (briefId !== undefined) {
    if (briefId === "") throw new BriefdbError("USAGE", "a brief id is not empty (leave --brief out for none)");
    noNul("the brief id", briefId);
  }
  if (idempotencyKey === undefined) return null;
  if (idempotencyKey === "" || idempotencyKey.length > MAX_KEY_LENGTH) {
    throw new BriefdbError("USAGE", `an idempotency key is 1 to ${MAX_KEY_LENGTH} characters`);
  }
  noNul("the idempotency key", idempotencyKey);
  return idempotencyKey;
}

function noNul(what: string, text: string): void {
  if (text.includes("\u0000")) throw new BriefdbError("USAGE", `${what} contains a NUL character (\\0), which a database cannot store as text`);
}
