/** Helpers shared by the holds tests. */
import { getAvailableBalance, type BriefDatabase } from "../../src/index.js";

/** A result's error code, or "ok". */
export const codeOf = (result: { success: boolean; error?: { code: string } }) => (result.success ? "ok" : result.error?.code);

/** Waits until the database's own clock has passed the user's holds' expiry (no timing is asserted). */
export async function untilExpired(db: BriefDatabase, userId: string): Promise<void> {
  while ((await getAvailableBalance(db, userId)).held > 0) await new Promise((resolve) => setTimeout(resolve, 100));
}
