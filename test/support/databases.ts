/**
 * One set-up for every database test: the dialects to run over, a fresh database per call (a
 * SQLite file in a temp folder, or a new database on the test PostgreSQL server), and the built
 * CLI run as a child process (built once per run by the global setup, from the current src/).
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { inject } from "vitest";
import { createDatabase } from "../../harness/postgres.mjs";

export const DIALECTS = ["sqlite", "postgresql"] as const;
export type TestDialect = (typeof DIALECTS)[number];

export const BIN = resolve(import.meta.dirname, "../../bin/briefdb");

export function pgAdminUrl(): string {
  return inject("pgAdminUrl");
}

/** A fresh, empty database of the dialect; its URL. */
export async function freshDatabase(dialect: TestDialect): Promise<string> {
  if (dialect === "sqlite") {
    return `file:${join(mkdtempSync(join(tmpdir(), "briefdb-test-")), "test.db")}`;
  }
  return createDatabase(pgAdminUrl(), `briefdb_test_${randomBytes(6).toString("hex")}`);
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON when it is one JSON object, else undefined. */
  readonly json: Record<string, any> | undefined;
}

export interface CliOptions {
  readonly env?: Record<string, string | undefined>;
  readonly input?: string;
  readonly timeoutMs?: number;
  /** The working directory (default: this process's), e.g. one holding a .env file. */
  readonly cwd?: string;
}

/** Runs the built `briefdb` binary with args; never throws on a non-zero exit. */
export function cli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        env: cleanEnv(options.env),
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return reject(error);
        const code = error ? Number(error.code) : 0;
        resolvePromise({ code, stdout, stderr, json: parseJson(stdout) });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Starts the CLI without waiting, for races and kills. */
export function spawnCli(args: readonly string[], env?: Record<string, string | undefined>) {
  return spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
}

function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete env.DATABASE_URL;
  delete env.NODE_ENV;
  delete env.BRIEFDB_DEBUG;
  delete env.FORCE_COLOR; // a developer's shell may force colour; the tests that want it say so
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function parseJson(text: string): Record<string, any> | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return undefined;
  try {
    return JSON.parse(trimmed) as Record<string, any>;
  } catch {
    return undefined;
  }
}

/** Every committed migration's tag, in order (both dialects have the same list). */
export const ALL_MIGRATIONS: readonly string[] = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, "../../drizzle/sqlite/meta/_journal.json"), "utf8")) as {
    entries: Array<{ tag: string }>;
  }
).entries.map((entry) => entry.tag);
