/**
 * Constraints left NOT VALID, as `--dry-run` and `--check` tell them. The online runner adds the
 * holds migration's foreign key NOT VALID and validates it in a step of its own; when that
 * validation fails (a row breaks the key) the key stays NOT VALID and the migration pending. The
 * ledger here is a few rows: what is proved is what is said and what runs, not how long it takes.
 */
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { forgetHoldsMigration, HOLDS_TAG } from "../harness/busy-ledger.mjs";
import { cli, freshDatabase } from "./support/databases.js";
import { startHoldsMigrationHeldAtBuild } from "./support/held-migration.js";

const HOLD_FK = "token_transactions_hold_id_token_holds_id_fk";
const VALIDATE_HOLD_FK = `ALTER TABLE "token_transactions" VALIDATE CONSTRAINT "${HOLD_FK}"`;
const ADD_HOLD_FK_NOT_VALID = `ALTER TABLE "token_transactions" ADD CONSTRAINT "${HOLD_FK}" FOREIGN KEY ("hold_id") REFERENCES "public"."token_holds"("id") ON DELETE no action ON UPDATE no action NOT VALID;`;

/** A migrated database with a user, the holds migration taken back off (pending again); its URL and an admin connection. */
async function holdsPending() {
  const url = await freshDatabase("postgresql");
  expect((await cli(["migrate", "--db", url])).code).toBe(0);
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  await admin`INSERT INTO users (id, email, name, token_balance) VALUES ('user-1', 'user-1@example.invalid', 'User 1', 0)`;
  await forgetHoldsMigration(url);
  return { url, admin };
}

async function holdForeignKey(admin: postgres.Sql) {
  const [row] = await admin<{ valid: boolean }[]>`SELECT convalidated AS valid FROM pg_constraint WHERE conname = ${HOLD_FK}`;
  return row;
}

describe("postgresql: NOT VALID constraints", () => {
  it("a ledger row breaking the holds key fails its validation; once the key is dropped by hand, --dry-run and --check show it added again before its VALIDATE, as the rerun does", async () => {
    const { url, admin } = await holdsPending();
    try {
      const held = await startHoldsMigrationHeldAtBuild(url, admin);
      // a row older than the check: written with triggers off (a bulk load), naming a hold that never was
      await admin.begin(async (tx) => {
        await tx.unsafe("SET LOCAL session_replication_role = replica");
        await tx.unsafe(`
          INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, hold_id)
          VALUES ('tx-rogue', 'user-1', 1, 'credit', 'rogue', 1, 'hold-gone')`);
      });
      await held.release();
      const failed = await held.exited;
      expect(failed.code).toBe(1);
      expect(failed.json()).toMatchObject({ ok: false, error: { code: "INVARIANT_VIOLATED" } });
      expect(await holdForeignKey(admin)).toEqual({ valid: false });

      // the row is fixed, and a DBA dropped the failed key by hand meanwhile
      await admin`DELETE FROM token_transactions WHERE id = 'tx-rogue'`;
      await admin.unsafe(`ALTER TABLE token_transactions DROP CONSTRAINT ${HOLD_FK}`);
      const dryRun = await cli(["migrate", "--dry-run", "--db", url, "--json"]);
      expect(dryRun.json).toMatchObject({ ok: true, pending: [{ tag: HOLDS_TAG, statements: [ADD_HOLD_FK_NOT_VALID, VALIDATE_HOLD_FK] }] });
      const check = await cli(["migrate", "--check", "--db", url, "--json"]);
      expect(check.code).toBe(0);
      expect(check.json?.statements).toMatchObject([
        { statement: ADD_HOLD_FK_NOT_VALID, kind: "add-foreign-key", holds: "brief", online: true },
        { statement: VALIDATE_HOLD_FK, kind: "validate-constraint", blocksWrites: false, online: true },
      ]);

      const rerun = await cli(["migrate", "--db", url, "--json"]);
      expect(rerun.code).toBe(0);
      expect(rerun.json).toMatchObject({ applied: [HOLDS_TAG] });
      expect(await holdForeignKey(admin)).toEqual({ valid: true });
    } finally {
      await admin.end();
    }
  });
});
