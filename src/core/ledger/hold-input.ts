/**
 * What a hold command takes, checked on entry and before any connection: the hold id's form and
 * the time to live. No database code here, so that parsing options never loads a driver.
 */
import { BriefdbError } from "../../errors.js";
import { durationMs } from "../duration.js";

export const HOLD_ID_PREFIX = "hold_";
const HOLD_ID = /^hold_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** 15 minutes: longer than a brief takes to generate, short enough that a crashed worker's hold soon frees. */
export const DEFAULT_HOLD_TTL_SECONDS = 15 * 60;
export const MIN_HOLD_TTL_SECONDS = 1;
/** A day: a hold outlives the work it reserves for, not the user's session. */
export const MAX_HOLD_TTL_SECONDS = 24 * 60 * 60;


/**
 * A hold id as briefdb makes them: `hold_` and a UUID, returned as briefdb stores it (lowercase: a
 * UUID's hex digits are case-insensitive, so an id copied in capitals names the same hold).
 * Anything else is INVALID_HOLD_ID.
 */
export function assertHoldId(holdId: string): string {
  if (typeof holdId === "string" && HOLD_ID.test(holdId)) return `${HOLD_ID_PREFIX}${holdId.slice(HOLD_ID_PREFIX.length).toLowerCase()}`;
  const shown = String(holdId).length > 60 ? `${String(holdId).slice(0, 60)}…` : String(holdId);
  throw new BriefdbError(
    "INVALID_HOLD_ID",
    `invalid hold id "${shown}": a hold id is "${HOLD_ID_PREFIX}" and a UUID, as \`tokens hold\` printed it`,
  );
}

/** A time to live typed by a person, in the one duration grammar (90s, 15m, 2h, bare seconds): 1s to 24h, whole seconds. */
export function parseTtl(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined || ms % 1000 !== 0) throw ttlError(`"${text}"`);
  return assertTtlSeconds(ms / 1000);
}

/** Checks a time to live handed to the library, in whole seconds. */
export function assertTtlSeconds(seconds: number): number {
  if (!Number.isSafeInteger(seconds) || seconds < MIN_HOLD_TTL_SECONDS || seconds > MAX_HOLD_TTL_SECONDS) {
    throw ttlError(`${seconds} seconds`);
  }
  return seconds;
}

function ttlError(shown: string): BriefdbError {
  return new BriefdbError("USAGE", `a hold's --ttl is 1s to 24h in whole seconds (90s, 15m, 2h, 1d, or bare seconds), not ${shown}`);
}
