/**
 * Holding an online `migrate` at a known point, so that a test can act between its steps: the
 * holds migration (0002) started while a transaction keeps an old snapshot open, which its
 * concurrent index build waits for — after its first transaction (the columns, the foreign key
 * added NOT VALID) committed, before its validation. Shared by the busy-ledger tests and the
 * small NOT VALID ones.
 */
import postgres from "postgres";
import { spawnCli } from "./databases.js";

/** Polls `probe` every 50 ms until it answers something (at most a minute). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1200; i++) {
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

export interface HeldMigration {
  readonly child: ReturnType<typeof spawnCli>;
  /** How the migrate process ended, and its stdout as JSON. */
  readonly exited: Promise<{ code: number | null; json: () => Record<string, any> }>;
  /** The migrate session's server process. */
  readonly pid: number;
  /** Ends the old snapshot: the build goes on. */
  release(): Promise<void>;
}

/** Starts `migrate --json` of 0002 on `url` and waits until its index build waits for a transaction holding an old snapshot. */
export async function startHoldsMigrationHeldAtBuild(url: string, admin: postgres.Sql): Promise<HeldMigration> {
  const reader = postgres(url, { max: 1, onnotice: () => {} });
  await reader.unsafe("BEGIN ISOLATION LEVEL REPEATABLE READ");
  await reader.unsafe("SELECT 1");
  const child = spawnCli(["migrate", "--db", url, "--json"]);
  let stdout = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  const exited = new Promise<{ code: number | null; json: () => Record<string, any> }>((resolve) =>
    child.on("close", (code) => resolve({ code, json: () => JSON.parse(stdout) })),
  );
  const { pid } = await waitFor("the build to wait for the old snapshot", async () => {
    const [row] = await admin<{ pid: number; phase: string }[]>`
      SELECT p.pid, p.phase FROM pg_stat_progress_create_index p JOIN pg_stat_activity a USING (pid)
      WHERE a.datname = current_database()`;
    return row?.phase === "waiting for old snapshots" ? row : undefined;
  });
  const release = async () => {
    await reader.unsafe("COMMIT");
    await reader.end();
  };
  return { child, exited, pid, release };
}

/**
 * Lets a held migrate go on to its VALIDATE and makes that wait for a lock: `blocker` (a session of
 * its own, max 1) opens a transaction queued behind the build's own lock, which takes the table
 * when the build ends. Returns with the VALIDATE waiting and the blocker's transaction open.
 */
export async function validateWaitingOn(blocker: postgres.Sql, admin: postgres.Sql, held: HeldMigration): Promise<void> {
  const [me] = await blocker<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
  const blockerPid = me?.pid ?? 0;
  await blocker.unsafe("BEGIN");
  // postgres.js sends a query when it is awaited: then() sends it now, without waiting for it
  const locked = blocker.unsafe("LOCK TABLE token_transactions IN SHARE UPDATE EXCLUSIVE MODE").then(() => true);
  await waitFor("the blocker to queue behind the build", async () => {
    const rows = await admin`SELECT 1 FROM pg_locks WHERE pid = ${blockerPid} AND NOT granted`;
    return rows.length > 0 ? true : undefined;
  });
  await held.release();
  await locked;
  await waitFor("the VALIDATE to wait for the blocker", async () => {
    const rows = await admin`
      SELECT 1 FROM pg_stat_activity WHERE pid = ${held.pid} AND wait_event_type = 'Lock' AND query LIKE '%VALIDATE CONSTRAINT%'`;
    return rows.length > 0 ? true : undefined;
  });
}

/**
 * Lets a held migrate go on to its VALIDATE, makes that wait for a lock (validateWaitingOn), then
 * kills migrate (SIGTERM) there and waits until its session is gone: the constraint is left NOT
 * VALID, the migration pending.
 */
export async function killWhileValidateWaits(url: string, admin: postgres.Sql, held: HeldMigration): Promise<void> {
  const blocker = postgres(url, { max: 1, onnotice: () => {} });
  await validateWaitingOn(blocker, admin, held);
  held.child.kill("SIGTERM");
  await held.exited;
  await waitFor("the killed migrate's session to end", async () => {
    const rows = await admin`SELECT 1 FROM pg_stat_activity WHERE pid = ${held.pid}`;
    return rows.length === 0 ? true : undefined;
  });
  await blocker.unsafe("COMMIT");
  await blocker.end();
}
