/**
 * The server's role in `health`: primary or standby, the host of the URL it is, its standbys or its
 * replay lag, and what an SRE should hear before a failover rather than after: a primary whose
 * replication is asynchronous (a failover may lose what it acknowledged), a synchronous standby
 * that is missing (every commit waits), a standby that receives nothing. `--require` turns a role
 * into a gate (CI, a readiness probe).
 */
import type { BriefDatabase } from "../../db/database.js";
import type { Replication } from "../../db/inspection.js";
import type { Target } from "../../db/target.js";
import { BriefdbError } from "../../errors.js";

/** What `health --require` and serve's /readyz can ask of the server. */
export const ROLE_REQUIREMENTS = ["primary", "standby", "sync"] as const;
export type RoleRequirement = (typeof ROLE_REQUIREMENTS)[number];

export type ServerRole = "primary" | "standby" | "embedded";

export interface ReplicationJudgement {
  /** null when the server would not say. */
  readonly role: ServerRole | null;
  /** The host of the URL this connection reached ("db2:5432"), or the server's own address; null over a Unix socket or on SQLite. */
  readonly server: string | null;
  readonly replication: Replication | null;
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
}

/** Reads `--require`: one of ROLE_REQUIREMENTS, else USAGE. */
export function parseRoleRequirement(value: string): RoleRequirement {
  if ((ROLE_REQUIREMENTS as readonly string[]).includes(value)) return value as RoleRequirement;
  throw new BriefdbError(
    "USAGE",
    `--require must be one of ${ROLE_REQUIREMENTS.join(", ")}, not ${JSON.stringify(value)}`,
    "primary: the server takes writes; standby: it is a standby; sync: a primary with a synchronous standby streaming",
  );
}

export function judgeReplication(
  replication: Replication | null,
  target: Target,
  require?: RoleRequirement,
  /** The servers of the URL's list that answered as primaries (ServerFinder.primaries), when asked. */
  listedPrimaries: readonly string[] | null = null,
): ReplicationJudgement {
  if (replication === null) {
    // SQLite: one embedded file, writable, nothing to fail over to
    const problems = require === undefined || require === "primary" ? [] : [`--require ${require}: SQLite has no standbys`];
    return { role: "embedded", server: null, replication: null, problems, warnings: [] };
  }
  const server = listedHost(replication, target);
  const where = server === null ? "the server" : `the server at ${server}`;
  const problems: string[] = [];
  const warnings: string[] = [];
  if (replication.role === "standby") {
    if (require !== undefined && require !== "standby") problems.push(`--require ${require}: ${where} is a standby (in recovery), not a primary`);
    if (!replication.receiving) warnings.push("this standby receives no WAL from a primary (the primary is down, or replication is broken): its data grows stale");
    return { role: "standby", server, replication, problems, warnings };
  }
  const streaming = replication.standbys.filter((standby) => standby.state === "streaming");
  const synchronous = streaming.filter((standby) => standby.syncState === "sync" || standby.syncState === "quorum");
  const commitsWait = !["local", "off"].includes(replication.synchronousCommit);
  if (require === "standby") problems.push(`--require standby: ${where} is a primary`);
  if (listedPrimaries !== null && listedPrimaries.length > 1) {
    // an old primary back after a failover, not fenced: each takes writes, and the ledgers part
    problems.push(
      `split brain: ${listedPrimaries.join(" and ")} ${listedPrimaries.length === 2 ? "both" : "all"} take writes (not in recovery); briefdb writes to the first of the URL's list that answers (${server ?? "this server"}), which may be the old primary: stop or rebuild the old primary as a standby (pg_rewind)`,
    );
  }
  if (require === "sync" && synchronous.length === 0) {
    problems.push(`--require sync: no synchronous standby streams from ${where}: a failover may lose commits it acknowledged`);
  }
  if (replication.synchronousStandbyNames.trim() !== "" && synchronous.length === 0 && commitsWait) {
    problems.push(
      `synchronous_standby_names = '${replication.synchronousStandbyNames}' but no synchronous standby is connected: every commit waits for one (writes hang until it returns)`,
    );
  } else if (streaming.length > 0 && synchronous.length === 0) {
    warnings.push(
      `replication is asynchronous (${streaming.map((standby) => standby.name).join(", ")}): a failover may lose the last commits this primary acknowledged; name a standby in synchronous_standby_names`,
    );
  } else if (streaming.length === 0 && listsSeveralHosts(target)) {
    warnings.push("the URL lists several servers but no standby streams from this primary: a failover would lose what it has not shipped");
  }
  return { role: "primary", server, replication, problems, warnings };
}

/**
 * With several servers in the URL, the one reached ("db2:5432"); null with one (the URL names it),
 * or when the server will not say.
 */
export async function serverReached(db: BriefDatabase): Promise<string | null> {
  if (!listsSeveralHosts(db.target)) return null;
  const replication = await db.inspector.replication().catch(() => null);
  return replication === null ? null : listedHost(replication, db.target);
}

/** The URL's host that the server's own address and port match; else that address; null over a socket. */
function listedHost(replication: Replication, target: Target): string | null {
  const { address, port } = replication;
  if (address === null || port === null) return null;
  if (target.dialect === "postgresql" && target.socketDir === undefined) {
    const samePort = target.hosts.filter((host) => host.port === port);
    const match = samePort.find((host) => host.host === address) ?? (samePort.length === 1 ? samePort[0] : undefined);
    if (match !== undefined) return hostPort(match.host, match.port);
  }
  return hostPort(address, port);
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function listsSeveralHosts(target: Target): boolean {
  return target.dialect === "postgresql" && target.socketDir === undefined && target.hosts.length > 1;
}
