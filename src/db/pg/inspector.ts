/**
 * Reads PostgreSQL's EXPLAIN lines ("Seq Scan on briefs", "Index Scan Backward using x on briefs",
 * "Sort"), its catalogue, and pg_stat_statements when the extension is installed and loaded.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "../database.js";
import { firstLine } from "../../errors.js";
import { rootMessage } from "../driver-errors.js";
import {
  readPlanLines,
  type PlanPatterns,
  type PlanReading,
  type QueryInspector,
  type Replication,
  type ServerStatement,
  type ServerStatements,
} from "../inspection.js";

const PATTERNS: PlanPatterns = {
  fullScans: [/\bSeq Scan on ("?[\w.]+"?)/],
  indexes: [/\b(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) ("?[\w.]+"?)/],
  // A Sort node ("Sort  (cost…", "->  Incremental Sort  (cost…"), not its "Sort Key:" detail line.
  sort: /(?:^|->)\s*(?:Incremental )?Sort\s+\(/,
};
const SOURCE = "pg_stat_statements";
const NOT_INSTALLED_HINT =
  "pg_stat_statements is not installed in this database: add pg_stat_statements to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements";

export class PgInspector implements QueryInspector {
  constructor(
    private readonly db: Executor,
    /** The servers of the URL's list that answer as primaries; undefined when the URL names one server and asks no role. */
    private readonly primariesListed: () => Promise<string[]> | undefined = () => undefined,
  ) {}

  async listedPrimaries(): Promise<readonly string[] | null> {
    return (await this.primariesListed()) ?? null;
  }

  readPlan(plan: readonly string[]): PlanReading {
    return readPlanLines(plan, PATTERNS);
  }

  async indexExists(name: string): Promise<boolean> {
    const rows = await this.db.all(
      sql`SELECT 1 AS found FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ${name}`,
    );
    return rows.length > 0;
  }

  async serverRole(): Promise<string> {
    const [row] = await this.db.all<{ replica: boolean; login: string }>(sql`SELECT pg_is_in_recovery() AS replica, current_user AS login`);
    return `${row?.replica ? "replica (read-only)" : "primary"}, as ${row?.login ?? "unknown"}`;
  }

  async replication(): Promise<Replication> {
    const [self] = await this.db.all<{ standby: boolean; address: string | null; port: number | null; sync_names: string; sync_commit: string }>(
      sql`SELECT pg_is_in_recovery() AS standby, host(inet_server_addr()) AS address, inet_server_port() AS port,
                 current_setting('synchronous_standby_names') AS sync_names, current_setting('synchronous_commit') AS sync_commit`,
    );
    const address = self?.address ?? null;
    const port = self?.port ?? null;
    if (self?.standby) {
      // lag as the standby can know it: what it received and has not replayed; seconds since the
      // last replayed commit was made, 0 when it has replayed all it received (an idle primary
      // sends no commits: the age of the last one is not lag)
      const [row] = await this.db.all<{ bytes: string | null; seconds: number | null; status: string | null; sender: string | null }>(
        sql`SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS bytes,
                   CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                        ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 END AS seconds,
                   r.status, CASE WHEN r.sender_host IS NULL THEN NULL ELSE r.sender_host || ':' || r.sender_port END AS sender
            FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true`,
      );
      return {
        role: "standby",
        address,
        port,
        receiving: row?.status === "streaming",
        upstream: row?.sender ?? null,
        replayLagBytes: row?.bytes === null || row?.bytes === undefined ? null : Math.max(0, Number(row.bytes)),
        replayLagSeconds: row?.seconds === null || row?.seconds === undefined ? null : Math.max(0, Number(row.seconds)),
      };
    }
    const standbys = await this.db.all<{ name: string; client: string | null; state: string; sync_state: string; lag_bytes: string | null; replay_lag: number | null }>(
      sql`SELECT application_name AS name, host(client_addr) AS client, state, sync_state,
                 pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS lag_bytes, EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag
          FROM pg_stat_replication ORDER BY application_name, pid`,
    );
    return {
      role: "primary",
      address,
      port,
      synchronousStandbyNames: self?.sync_names ?? "",
      synchronousCommit: self?.sync_commit ?? "on",
      standbys: standbys.map((row) => ({
        name: row.name,
        client: row.client,
        state: row.state,
        syncState: row.sync_state,
        lagBytes: row.lag_bytes === null ? null : Math.max(0, Number(row.lag_bytes)),
        replayLagSeconds: row.replay_lag === null ? null : Number(row.replay_lag),
      })),
    };
  }

  async serverStatements(limit: number): Promise<ServerStatements> {
    const installed = await this.db.all(sql`SELECT 1 AS found FROM pg_extension WHERE extname = ${SOURCE}`);
    if (installed.length === 0) return { available: false, source: SOURCE, hint: NOT_INSTALLED_HINT };
    try {
      return { available: true, source: SOURCE, statements: await this.costliest(limit) };
    } catch (error) {
      // Installed but unreadable: not preloaded, a version without *_exec_time, or no privilege.
      return { available: false, source: SOURCE, hint: `pg_stat_statements cannot be read: ${firstLine(rootMessage(error))}` };
    }
  }

  private async costliest(limit: number): Promise<ServerStatement[]> {
    const rows = await this.db.all<{ query: string; calls: string; total_ms: number; mean_ms: number; rows: string }>(
      sql`SELECT query, calls, total_exec_time AS total_ms, mean_exec_time AS mean_ms, rows
          FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          ORDER BY total_exec_time DESC
          LIMIT ${limit}`,
    );
    return rows.map((row) => ({
      query: row.query,
      calls: Number(row.calls),
      totalMs: row.total_ms,
      meanMs: row.mean_ms,
      rows: Number(row.rows),
    }));
  }
}
