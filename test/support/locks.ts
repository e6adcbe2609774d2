/**
 * Real locks held by another connection, for the tests of what a CLI process does while it waits
 * on one: a transaction opened beside the CLI (SQLite: BEGIN IMMEDIATE, the write lock;
 * PostgreSQL: BEGIN, then row locks taken by the statements run in it), and ways to see that the
 * CLI process has got as far as waiting.
 */
import { readdirSync, readlinkSync, realpathSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import Database from "better-sqlite3";
import postgres from "postgres";
import type { TestDialect } from "./databases.js";

export interface LockHolder {
  /** Runs a statement inside the holder's open transaction. */
  run(statement: string): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Lets go of the connection without a word (its server is gone). */
  abandon(): Promise<void>;
}

/** Opens a transaction on `url` that holds its locks until commit or rollback. */
export async function openHolder(dialect: TestDialect, url: string): Promise<LockHolder> {
  if (dialect === "sqlite") {
    const db = new Database(sqlitePath(url));
    db.exec("BEGIN IMMEDIATE");
    const end = (statement: string) => {
      db.exec(statement);
      db.close();
    };
    return {
      run: async (statement) => void db.exec(statement),
      commit: async () => end("COMMIT"),
      rollback: async () => end("ROLLBACK"),
      abandon: async () => void db.close(),
    };
  }
  const client = postgres(url, { max: 1, onnotice: () => {} });
  const reserved = await client.reserve();
  await reserved.unsafe("BEGIN");
  const end = async (statement: string) => {
    await reserved.unsafe(statement).catch(() => {});
    reserved.release();
    await client.end({ timeout: 1 });
  };
  return {
    run: async (statement) => void (await reserved.unsafe(statement)),
    commit: () => end("COMMIT"),
    rollback: () => end("ROLLBACK"),
    abandon: () => client.end({ timeout: 0 }),
  };
}

/**
 * Resolves once `child` (a CLI process on `url`) waits on a lock: on PostgreSQL, `count` briefdb
 * sessions of the database wait on a lock (pg_stat_activity); on SQLite, where no other process
 * can see who waits, once it has the database file open (its signal handling is in place from
 * before it opens anything).
 */
export async function untilWaiting(dialect: TestDialect, url: string, child: ChildProcess, count = 1): Promise<void> {
  for (let tries = 0; tries < 1200; tries++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("the CLI process ended before it waited on the lock");
    if (dialect === "sqlite" ? hasOpen(child.pid, realpathSync(sqlitePath(url))) : (await waitingSessions(url)) >= count) return;
    await pause(50);
  }
  throw new Error("the CLI process never waited on the lock");
}

/** Resolves once no briefdb session of the database runs a statement (a cancelled or abandoned one is over). */
export async function untilNoStatements(url: string): Promise<void> {
  for (let tries = 0; tries < 1200; tries++) {
    if ((await sessions(url, "AND state <> 'idle'")) === 0) return;
    await pause(50);
  }
  throw new Error("a briefdb session is still connected");
}

function waitingSessions(url: string): Promise<number> {
  return sessions(url, "AND wait_event_type = 'Lock'");
}

async function sessions(url: string, condition: string): Promise<number> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await client.unsafe<Array<{ n: string }>>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'briefdb' ${condition}`,
    );
    return Number(row?.n ?? 0);
  } finally {
    await client.end({ timeout: 1 });
  }
}

function hasOpen(pid: number | undefined, path: string): boolean {
  if (pid === undefined) return false;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

export function sqlitePath(url: string): string {
  return url.replace(/^file:/, "");
}

/** How a child process ended: its exit code, and everything it wrote. */
export function ended(child: ChildProcess): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  return new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
