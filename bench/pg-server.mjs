// The PostgreSQL server of the benchmarks: the one BRIEFDB_BENCH_PG_URL names, else an
// embedded one started for the run (see scripts/embedded-postgres.mjs).
import { startEmbeddedPostgres } from "../scripts/embedded-postgres.mjs";

export { createDatabase } from "../scripts/embedded-postgres.mjs";

export async function startPostgres() {
  const external = process.env.BRIEFDB_BENCH_PG_URL;
  if (external) return { url: external, stop: async () => {} };
  return startEmbeddedPostgres({ password: "bench", settings: { max_connections: 200 } });
}
