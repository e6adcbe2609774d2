/**
 * Constraints left NOT VALID, as `migrate --status`, `health`, `--dry-run` and `--check` tell them.
 * The online runner adds the holds migration's foreign key NOT VALID and validates it in a step of
 * its own; when that validation fails (a row breaks the key) or migrate is killed before it ends,
 * the key stays NOT VALID and the migration pending. Status and health name the key from the
 * catalog (pg_constraint.convalidated), so one made NOT VALID by hand is named too — a warning
 * then, not unhealthy. SQLite has no NOT VALID: its list is always empty. The ledger here is a few
 * rows: what is proved is what is said and what runs, not how long it takes.
 */
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { forgetHoldsMigration, HOLDS_TAG } from "../harness/busy-ledger.mjs";
import { cli, DIALECTS, freshDatabase } from "./support/databases.js";
import { killWhileValidateWaits, startHoldsMigrationHeldAtBuild, validateWaitingOn } from "./support/held-migration.js";

const HOLD_FK = "token_transactions_hold_id_token_holds_id_fk";
const VALIDATE_HOLD_FK = `ALTER TABLE "token_transactions" VALIDATE CONSTRAINT "${HOLD_FK}"`;
const ADD_HOLD_FK_NOT_VALID = `ALTER TABLE "token_transactions" ADD CONSTRAINT "${HOLD_FK}" FOREIGN KEY ("hold_id") REFERENCES "public"."token_holds"("id") ON DELETE no action ON UPDATE no action NOT VALID;`;
const HOLD_FK_STATUS = { constraint: HOLD_FK, table: "token_transactions", migration: HOLDS_TAG, validateStatement: VALIDATE_HOLD_FK };
/** What status and health say of the holds migration stopped before its validation ended. */
const HOLDS_LEFT_NOT_VALID = `${HOLDS_TAG}: pending, 2 of 3 steps done; constraint ${HOLD_FK} on token_transactions is NOT VALID (not yet checked against existing rows): run \`briefdb migrate\` to validate it`;

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

/** status and health, --json and text, on a database whose holds migration stopped with its key NOT VALID. */
async function expectHoldsKeyNamed(url: string) {
  const status = await cli(["migrate", "--status", "--db", url, "--json"]);
  expect(status.code).toBe(1);
  expect(status.json).toMatchObject({
    ok: false,
    error: { code: "NOT_MIGRATED" },
    pending: [HOLDS_TAG],
    partial: [{ tag: HOLDS_TAG, finished: expect.any(Array), steps: 3 }],
    notValidConstraints: [HOLD_FK_STATUS],
  });
  expect(status.json?.partial[0].finished).toHaveLength(2);
  const statusText = await cli(["migrate", "--status", "--db", url]);
  expect(statusText.stdout).toContain(`│ ${HOLDS_TAG}`);
  expect(statusText.stdout).toContain("pending, 2 of 3 steps done");
  expect(statusText.stdout).toContain(`constraint ${HOLD_FK} on token_transactions │ NOT VALID`);
  expect(statusText.stdout).toContain(`${HOLDS_LEFT_NOT_VALID}\n`);

  const health = await cli(["health", "--db", url, "--json"]);
  expect(health.code).toBe(1);
  expect(health.json).toMatchObject({
    ok: false,
    healthy: false,
    error: { code: "NOT_MIGRATED" },
    notValidConstraints: [HOLD_FK_STATUS],
    problems: ["1 migration(s) pending", HOLDS_LEFT_NOT_VALID],
    warnings: [],
  });
  const healthText = await cli(["health", "--db", url]);
  expect(healthText.code).toBe(1);
  expect(healthText.stdout).toMatch(new RegExp(`constraints +NOT VALID: ${HOLD_FK} on token_transactions\n`));
  expect(healthText.stderr).toBe(`error: 1 migration(s) pending; ${HOLDS_LEFT_NOT_VALID} (hint: run \`briefdb migrate\`)\n`);
}

describe.each(DIALECTS)("%s: NOT VALID constraints", (dialect) => {
  it("a migrated database has none: migrate --status and health say so with empty lists", async () => {
    const url = await freshDatabase(dialect);
    expect((await cli(["migrate", "--db", url])).code).toBe(0);
    const status = await cli(["migrate", "--status", "--db", url, "--json"]);
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({ ok: true, partial: [], notValidConstraints: [] });
    const health = await cli(["health", "--db", url, "--json"]);
    expect(health.code).toBe(0);
    expect(health.json).toMatchObject({ ok: true, healthy: true, notValidConstraints: [], problems: [], warnings: [] });
    expect((await cli(["health", "--db", url])).stdout).not.toMatch(/constraints|warning/);
    // nothing pending: the rerun changes nothing and does not say that indexes changed
    const rerun = await cli(["migrate", "--db", url]);
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toMatch(/migrate +nothing pending\n/);
    expect(rerun.stdout).not.toContain("changed");
  });

  // the cases below read PostgreSQL's catalog (NOT VALID constraints exist only there)
  it.runIf(dialect === "postgresql")("a ledger row breaking the holds key fails its validation: status and health name the NOT VALID key; once it is dropped by hand, --dry-run and --check show it added again before its VALIDATE, as the rerun does", async () => {
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
      await expectHoldsKeyNamed(url);

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
      // gone, it is no longer NOT VALID: status names the steps only
      expect((await cli(["migrate", "--status", "--db", url, "--json"])).json).toMatchObject({ partial: [{ tag: HOLDS_TAG, steps: 3 }], notValidConstraints: [] });

      const rerun = await cli(["migrate", "--db", url, "--json"]);
      expect(rerun.code).toBe(0);
      expect(rerun.json).toMatchObject({ applied: [HOLDS_TAG] });
      expect(await holdForeignKey(admin)).toEqual({ valid: true });
      const health = await cli(["health", "--db", url, "--json"]);
      expect(health.json).toMatchObject({ healthy: true, notValidConstraints: [], warnings: [] });
    } finally {
      await admin.end();
    }
  });

  it.runIf(dialect === "postgresql")("a migrate killed while its VALIDATE waits: status and health name the NOT VALID key, --dry-run shows only its VALIDATE, and the rerun validates it", async () => {
    const { url, admin } = await holdsPending();
    try {
      await killWhileValidateWaits(url, admin, await startHoldsMigrationHeldAtBuild(url, admin));
      expect(await holdForeignKey(admin)).toEqual({ valid: false });
      await expectHoldsKeyNamed(url);
      const dryRun = await cli(["migrate", "--dry-run", "--db", url, "--json"]);
      expect(dryRun.json).toMatchObject({ ok: true, pending: [{ tag: HOLDS_TAG, statements: [VALIDATE_HOLD_FK] }] });

      const rerun = await cli(["migrate", "--db", url, "--json"]);
      expect(rerun.code).toBe(0);
      expect(await holdForeignKey(admin)).toEqual({ valid: true });
      const health = await cli(["health", "--db", url, "--json"]);
      expect(health.code).toBe(0);
      expect(health.json).toMatchObject({ healthy: true, notValidConstraints: [], problems: [], warnings: [] });
    } finally {
      await admin.end();
    }
  });

  it.runIf(dialect === "postgresql")("a constraint made NOT VALID by hand, nothing pending: status and health name it as a warning (exit 0), migrate leaves it alone, its VALIDATE clears it", async () => {
    const url = await freshDatabase(dialect);
    expect((await cli(["migrate", "--db", url])).code).toBe(0);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`
        ALTER TABLE reviews DROP CONSTRAINT reviews_rating_range;
        ALTER TABLE reviews ADD CONSTRAINT reviews_rating_range CHECK (rating BETWEEN 1 AND 5) NOT VALID`);
      const validate = `ALTER TABLE "reviews" VALIDATE CONSTRAINT "reviews_rating_range"`;
      const warning = `constraint reviews_rating_range on reviews is NOT VALID (not yet checked against existing rows); no pending migration validates it: \`${validate}\` checks them without blocking writes`;

      const status = await cli(["migrate", "--status", "--db", url, "--json"]);
      expect(status.code).toBe(0);
      expect(status.json).toMatchObject({
        ok: true,
        pending: [],
        notValidConstraints: [{ constraint: "reviews_rating_range", table: "reviews", migration: null, validateStatement: validate }],
      });
      const statusText = await cli(["migrate", "--status", "--db", url]);
      expect(statusText.code).toBe(0);
      expect(statusText.stdout).toContain(", 0 pending, 1 NOT VALID constraint(s)\n");
      expect(statusText.stdout).toContain(`${warning}\n`);

      const health = await cli(["health", "--db", url, "--json"]);
      expect(health.code).toBe(0);
      expect(health.json).toMatchObject({
        ok: true,
        healthy: true,
        notValidConstraints: [{ constraint: "reviews_rating_range", table: "reviews", migration: null }],
        problems: [],
        warnings: [warning],
      });
      const healthText = await cli(["health", "--db", url]);
      expect(healthText.code).toBe(0);
      expect(healthText.stdout).toMatch(/constraints +NOT VALID: reviews_rating_range on reviews\n/);
      expect(healthText.stdout).toMatch(new RegExp(`warning +${warning.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));

      // not briefdb's to validate: a rerun changes nothing
      const rerun = await cli(["migrate", "--db", url, "--json"]);
      expect(rerun.json).toMatchObject({ ok: true, applied: [] });
      const [row] = await admin<{ valid: boolean }[]>`SELECT convalidated AS valid FROM pg_constraint WHERE conname = 'reviews_rating_range'`;
      expect(row).toEqual({ valid: false });

      await admin.unsafe(validate);
      expect((await cli(["health", "--db", url, "--json"])).json).toMatchObject({ healthy: true, notValidConstraints: [], warnings: [] });
    } finally {
      await admin.end();
    }
  });
  it.runIf(dialect === "postgresql")("a NOT VALID constraint whose name has quotes, capitals and a newline: the text output escapes it (no forged line), --json keeps it whole and its validateStatement validates it", async () => {
    const url = await freshDatabase(dialect);
    expect((await cli(["migrate", "--db", url])).code).toBe(0);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const name = 'Odd "q"\n0003_forged: applied';
      await admin.unsafe(`ALTER TABLE reviews ADD CONSTRAINT "${name.replace(/"/g, '""')}" CHECK (rating > 0) NOT VALID`);
      const status = await cli(["migrate", "--status", "--db", url, "--json"]);
      expect(status.code).toBe(0);
      expect(status.json?.notValidConstraints).toEqual([
        { constraint: name, table: "reviews", migration: null, validateStatement: `ALTER TABLE "reviews" VALIDATE CONSTRAINT "Odd ""q""\n0003_forged: applied"` },
      ]);
      const statusText = await cli(["migrate", "--status", "--db", url]);
      expect(statusText.code).toBe(0);
      expect(statusText.stdout).not.toMatch(/^0003_forged/m);
      expect(statusText.stdout).toContain('constraint Odd "q"\\n0003_forged: applied on reviews is NOT VALID');
      const healthText = await cli(["health", "--db", url]);
      expect(healthText.code).toBe(0);
      expect(healthText.stdout).not.toMatch(/^0003_forged/m);

      await admin.unsafe(status.json?.notValidConstraints[0].validateStatement);
      expect((await cli(["health", "--db", url, "--json"])).json).toMatchObject({ healthy: true, notValidConstraints: [], warnings: [] });
    } finally {
      await admin.end();
    }
  });
  it.runIf(dialect === "postgresql")("a search_path whose first schema needs quoting: status and health still read the catalog, naming a NOT VALID constraint on the tables the path reaches and none in a schema off it", async () => {
    const url = await freshDatabase(dialect);
    expect((await cli(["migrate", "--db", url])).code).toBe(0);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const database = new URL(url).pathname.slice(1);
      await admin.unsafe(`
        CREATE SCHEMA "Side App";
        CREATE SCHEMA elsewhere;
        CREATE TABLE elsewhere.notes (n int);
        ALTER TABLE elsewhere.notes ADD CONSTRAINT notes_positive CHECK (n > 0) NOT VALID;
        ALTER TABLE reviews ADD CONSTRAINT reviews_rating_positive CHECK (rating > 0) NOT VALID;
        ALTER DATABASE "${database}" SET search_path = "Side App", public`);
      const named = [{ constraint: "reviews_rating_positive", table: "reviews", migration: null }];
      const status = await cli(["migrate", "--status", "--db", url, "--json"]);
      expect(status.code).toBe(0);
      expect(status.json).toMatchObject({ ok: true, pending: [], invalidIndexes: [], notValidConstraints: named });
      const health = await cli(["health", "--db", url, "--json"]);
      expect(health.code).toBe(0);
      expect(health.json).toMatchObject({ healthy: true, notValidConstraints: named, problems: [] });
    } finally {
      await admin.end();
    }
  });
  it.runIf(dialect === "postgresql")("the key dropped by another session while migrate's VALIDATE waits for it (after the catalog said NOT VALID): migrate adds it NOT VALID again and validates it in the same run", async () => {
    const { url, admin } = await holdsPending();
    const blocker = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const held = await startHoldsMigrationHeldAtBuild(url, admin);
      await validateWaitingOn(blocker, admin, held);
      await blocker.unsafe(`ALTER TABLE token_transactions DROP CONSTRAINT ${HOLD_FK}`);
      await blocker.unsafe("COMMIT");
      const done = await held.exited;
      expect(done.json()).toMatchObject({ ok: true, applied: [HOLDS_TAG] });
      expect(done.code).toBe(0);
      expect(await holdForeignKey(admin)).toEqual({ valid: true });
    } finally {
      await blocker.end();
      await admin.end();
    }
  });
});
