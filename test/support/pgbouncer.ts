/**
 * A real PgBouncer (Debian's package) in front of the test PostgreSQL server, in transaction mode
 * with nothing configured for briefdb: a temporary folder holds its configuration, its user list
 * (the test server's password) and its log; it listens on a free loopback port and is stopped by
 * its process id. As root it runs as the `postgres` user (PgBouncer refuses to run as root).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { delimiter, join } from "node:path";

export interface PgBouncer {
  /** `url` (a database on the test server) as reached through PgBouncer. */
  through(url: string): string;
  readonly port: number;
  /** Its log so far, for a failure's message. */
  log(): string;
  stop(): Promise<void>;
}

/** The pgbouncer binary on PATH or in /usr/sbin (where Debian puts it); undefined when not installed. */
export function pgBouncerBinary(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  return dirs.filter((dir) => dir.startsWith("/")).map((dir) => join(dir, "pgbouncer")).find((path) => existsSync(path));
}

/**
 * Starts PgBouncer in front of the server of `adminUrl` (postgres://user:password@127.0.0.1:port/…),
 * pool_mode=transaction; `settings` adds or overrides lines of its [pgbouncer] section.
 */
export async function startPgBouncer(adminUrl: string, settings: Record<string, string> = {}): Promise<PgBouncer> {
  const binary = pgBouncerBinary();
  if (binary === undefined) throw new Error("pgbouncer is not installed (apt-get install pgbouncer)");
  const upstream = new URL(adminUrl);
  const folder = mkdtempSync(join(tmpdir(), "briefdb-pgbouncer-"));
  const port = await freePort();
  const user = decodeURIComponent(upstream.username);
  const password = decodeURIComponent(upstream.password);
  const logFile = join(folder, "pgbouncer.log");
  const all: Record<string, string> = {
    listen_addr: "127.0.0.1",
    listen_port: String(port),
    unix_socket_dir: "",
    auth_type: "md5",
    auth_file: join(folder, "userlist.txt"),
    pool_mode: "transaction",
    max_client_conn: "500",
    default_pool_size: "20",
    logfile: logFile,
    pidfile: join(folder, "pgbouncer.pid"),
    ...settings,
  };
  writeFileSync(join(folder, "userlist.txt"), `"${user}" "${password}"\n`);
  writeFileSync(
    join(folder, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${upstream.hostname} port=${upstream.port}`,
      "[pgbouncer]",
      ...Object.entries(all).map(([name, value]) => `${name} = ${value}`),
      "",
    ].join("\n"),
  );
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { uid, gid } = idsOf("postgres");
    chmodSync(folder, 0o700);
    for (const name of ["", "userlist.txt", "pgbouncer.ini"]) chownSync(join(folder, name), uid, gid);
  }
  const child = spawn(binary, [...(asRoot ? ["-u", "postgres"] : []), join(folder, "pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const log = () => `${stderr}${existsSync(logFile) ? readFileSync(logFile, "utf8") : ""}`;
  try {
    await untilListening(child, port, log);
  } catch (error) {
    child.kill("SIGKILL");
    rmSync(folder, { recursive: true, force: true });
    throw error;
  }
  // a test that timed out never reaches its stop(): PgBouncer must not outlive this process
  const leftover = () => {
    child.kill("SIGKILL");
    rmSync(folder, { recursive: true, force: true });
  };
  process.once("exit", leftover);
  return {
    port,
    through: (url: string) => {
      const target = new URL(url);
      target.host = `127.0.0.1:${port}`;
      return target.toString();
    },
    log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGINT"); // PgBouncer: immediate shutdown
        await exited;
      }
      process.removeListener("exit", leftover);
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** Waits until PgBouncer accepts connections on `port`; fails if it exits first. */
async function untilListening(child: ChildProcess, port: number, log: () => string): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`pgbouncer exited: ${log()}`);
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** The uid and gid of a local user, from /etc/passwd. */
function idsOf(name: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`no user ${name} to run pgbouncer as (it refuses to run as root)`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}
