/**
 * The one set-up for suites that use the library (kysely's test-setup.ts): `initTest` gives a
 * fresh database of the dialect, opened and migrated; `newUser` makes a user with a balance;
 * `destroyTest` closes what initTest opened. A file calls initTest in its beforeAll (one database
 * per dialect per file, or per case where a case needs its own) and destroyTest in its afterAll.
 *
 * A case for one dialect only is written `it.runIf(dialect === "postgresql")(…)`, a group of them
 * `describe.runIf(dialect === "sqlite")(…)`: on the other dialect they are reported as skipped.
 *
 * Tests that need a database not migrated yet (migrate, seed, the CLI's own set-up) take
 * `freshDatabase` from databases.ts, which opens nothing.
 */
import { createUser, migrate, openDatabase, type BriefDatabase, type OpenOptions } from "../../src/index.js";
import { freshDatabase, type TestDialect } from "./databases.js";

export interface TestContext {
  readonly dialect: TestDialect;
  /** The database's URL, for the CLI, a second connection, or a raw client. */
  readonly url: string;
  /** The database opened with initTest's options, every migration applied. */
  readonly db: BriefDatabase;
}

/** A fresh database of the dialect, opened (with `options`) and migrated. */
export async function initTest(dialect: TestDialect, options?: OpenOptions): Promise<TestContext> {
  const url = await freshDatabase(dialect);
  const db = await openDatabase(url, options);
  try {
    await migrate(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  return { dialect, url, db };
}

/** Closes initTest's database; a no-op when initTest never finished (its beforeAll failed). */
export async function destroyTest(db: BriefDatabase | undefined): Promise<void> {
  await db?.close();
}

export interface NewUserOptions {
  /** Default `user-0001`, `user-0002`, … in creation order (so ids sort as they were made). */
  readonly id?: string;
  /** Opening balance, credited through the ledger. Default 0. */
  readonly balance?: number;
  /** Default `<id>@example.test`. */
  readonly email?: string;
  /** Default the id. */
  readonly name?: string;
}

let usersMade = 0;

/** Makes a user through the library (createUser), its balance as one ledger credit; its id. */
export async function newUser(db: BriefDatabase, options: NewUserOptions = {}): Promise<string> {
  const id = options.id ?? `user-${String(++usersMade).padStart(4, "0")}`;
  await createUser(db, { id, email: options.email ?? `${id}@example.test`, name: options.name ?? id, openingBalance: options.balance ?? 0 });
  return id;
}
