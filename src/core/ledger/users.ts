/** Users as far as briefdb needs them: create one with an opening balance, remove a throw-away one. */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { BriefdbError } from "../../errors.js";
import { toBriefdbError } from "../failures.js";
import { applyTokenOperation } from "./tokens.js";

export interface NewUser {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  /** Credited through the ledger ("opening balance"), so the balance always equals its ledger. */
  readonly openingBalance?: number;
}

export async function createUser(db: BriefDatabase, user: NewUser): Promise<void> {
  const now = db.time.fromEpochMs(Date.now());
  try {
    await db.run(sql`INSERT INTO users (id, email, name, token_balance, created_at, updated_at)
      VALUES (${user.id}, ${user.email}, ${user.name}, 0, ${now}, ${now})`);
  } catch (error) {
    if (db.classify(error) === "unique_violation") {
      throw new BriefdbError("USAGE", `a user with id "${user.id}" or email "${user.email}" already exists`);
    }
    throw toBriefdbError(error, db);
  }
  if (user.openingBalance !== undefined && user.openingBalance > 0) {
    await applyTokenOperation(db, user.id, "credit", user.openingBalance, "opening balance");
  }
}

/** Removes a user with their ledger rows and holds (for throw-away users: race tests, fixtures). */
export async function removeUser(db: BriefDatabase, userId: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.run(sql`DELETE FROM token_transactions WHERE user_id = ${userId}`);
    await tx.run(sql`DELETE FROM token_holds WHERE user_id = ${userId}`);
    await tx.run(sql`DELETE FROM users WHERE id = ${userId}`);
  });
}
