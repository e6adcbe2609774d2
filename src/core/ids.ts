/** Identifiers for new rows. */
import { randomUUID } from "node:crypto";

/**
 * A UUIDv7: the time in milliseconds, then randomness. Ledger rows written later sort later, and
 * PostgreSQL's primary-key index grows at one end instead of splitting pages at random.
 */
export function newId(): string {
  const time = Date.now().toString(16).padStart(12, "0");
  const random = randomUUID();
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15, 18)}-${random.slice(19)}`;
}
