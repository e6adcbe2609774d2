/** briefdb's public face: the library the CLI is a thin layer over. */
import { clearTestData } from "./core/local/clear.js";
import { seedTestData } from "./core/local/seed.js";
import { compactDatabase } from "./core/local/compact.js";

export { openDatabase, openTarget } from "./db/open.js";
export type {
  BriefDatabase,
  Executor,
  IntegrityCheck,
  StorageSize,
  IsolationLevel,
  Transaction,
  PoolUse,
  OpenOptions,
  TransactionOptions,
  CloseOptions,
} from "./db/database.js";
export type { PgBriefDatabase, PgOrm, PgTx } from "./db/pg/database.js";
export type { SqliteBriefDatabase, SqliteOrm } from "./db/sqlite/database.js";
export { parseTarget, redactUrl, isLocalTarget, assertLocalTarget, DEFAULT_URL } from "./db/target.js";
export type { Target, SqliteTarget, PgTarget, DialectName } from "./db/target.js";
export { BriefdbError, EXIT_CODES, isBriefdbError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { withTransaction } from "./core/ledger/transaction.js";
export type { Result } from "./core/ledger/transaction.js";
export { checkDatabaseHealth } from "./core/health/health.js";
export type { HealthOptions, HealthReport, IntegrityStatus } from "./core/health/health.js";
export { migrate } from "./core/migrate/migrate.js";
export { assertMigrated, readMigrations } from "./core/migrate/records.js";
export type { MigrateResult, MigrateOptions, MigrateProgress } from "./core/migrate/result.js";
export type { Migration, PartialMigration } from "./core/migrate/records.js";
export { migrationStatus } from "./core/migrate/status.js";
export type {
  InvalidIndexStatus,
  MigrationStatus,
  NotValidConstraintStatus,
  PartialMigrationStatus,
} from "./core/migrate/status.js";
export { checkPendingMigrations, DEFAULT_MAX_BLOCKING_ROWS } from "./core/migrate/hazards.js";
export type { HazardReport, StatementHazard } from "./core/migrate/hazards.js";
export type { LockHazard, InvalidIndex, IndexBuildProgress, NotValidConstraint, StatementKind } from "./db/schema-changes.js";
export { atomicTokenOperation, applyTokenOperation, getBalance, getHistory, verifyLedger } from "./core/ledger/tokens.js";
export type { TokenOperationOptions, TokenOperationResult, VerifyReport, Drift, LedgerEntry, TokenOperation } from "./core/ledger/tokens.js";
export {
  holdTokens,
  captureHold,
  releaseHold,
  listHolds,
  applyHold,
  applyCapture,
  applyRelease,
  getActiveHolds,
  getAvailableBalance,
} from "./core/ledger/holds.js";
export type { HoldOptions, HoldResult, SettlementResult, AvailableBalance, HoldRecord, HoldStatus } from "./core/ledger/holds.js";
export { checkHolds } from "./core/ledger/hold-checks.js";
export type { HoldViolation } from "./core/ledger/hold-checks.js";
export type { LedgerOutOfOrder } from "./core/ledger/order-check.js";
export { parseTtl, assertHoldId, DEFAULT_HOLD_TTL_SECONDS, MIN_HOLD_TTL_SECONDS, MAX_HOLD_TTL_SECONDS } from "./core/ledger/hold-input.js";
export { parseAmount, MAX_AMOUNT } from "./core/ledger/amount.js";
export { createUser, removeUser } from "./core/ledger/users.js";
export type { NewUser } from "./core/ledger/users.js";
export { runRaceTest } from "./core/race/race.js";
export { runHttpRace } from "./core/race/http-race.js";
export type { HttpRaceOptions, HttpRaceReport, StatusClass, ClassLatency } from "./core/race/http-race.js";
export { parseRequestTemplate, DEFAULT_BODY } from "./core/race/http-template.js";
export type { RequestTemplate, RequestTemplateInput } from "./core/race/http-template.js";
export { healthHandler, livenessHandler, metricsHandler, toNodeListener } from "./core/health/endpoints.js";
export type { RequestHandler, HealthHandlerOptions } from "./core/health/endpoints.js";
export { createMetricsCollector, QUERY_BUCKETS, type MetricsOptions } from "./core/health/metrics.js";
export type { MetricsCollector } from "./core/health/metrics.js";
export { tokenCounts } from "./core/ledger/counters.js";
export type { TokenCount, TokenOutcome } from "./core/ledger/counters.js";
export { startSidecar, DEFAULT_SIDECAR_PORT, DEFAULT_SIDECAR_HOST, SIDECAR_ROUTES } from "./core/health/sidecar.js";
export type { Sidecar, SidecarOptions } from "./core/health/sidecar.js";
export { createDashboard, DASHBOARD_CSP, DASHBOARD_API } from "./core/dashboard/handler.js";
export type { Dashboard, DashboardOptions } from "./core/dashboard/handler.js";
export type { RaceOptions, RaceReport, Invariant } from "./core/race/race.js";
export type { RaceStrategy } from "./core/race/deduct-racer.js";
export { monitorQuery, flushQueryLog, DEFAULT_WARN_MS, DEFAULT_SLOW_MS } from "./core/queries/monitor.js";
export type { MonitorOptions, MonitorLogger } from "./core/queries/monitor.js";
export { slowQueryReport } from "./core/queries/slow-queries.js";
export type { SlowQueryReport, SlowQueryReportOptions, SlowQueryAggregate } from "./core/queries/slow-queries.js";
export type { ServerStatement, ServerStatements, PlanReading, TimeSql, QueryInspector } from "./db/inspection.js";
export { probeCanonicalQueries } from "./core/queries/probes.js";
export type { ProbeResult, IndexDefinition } from "./core/queries/probes.js";
export {
  publishedBriefsByViews,
  publishedBriefsByDate,
  userBriefs,
  briefReviews,
  userTokenHistory,
  briefBySlug,
} from "./core/queries/listings.js";
export type { ListingOptions, ListingName, BriefSummary, Brief, Review } from "./core/queries/listings.js";
export type { BulkColumn, BulkRow, BulkWriter } from "./db/database.js";
export type { SeedOptions, SeedResult, SeedProgress, SeedCounts } from "./core/local/seed.js";
export type { ClearOptions, ClearResult, TableCounts, AppTable } from "./core/local/clear.js";
export type { SeedSizes, SeedScale } from "./core/local/seed-sizes.js";
export { seedTables } from "./core/local/seed-rows.js";
export type { SeedTableName, SeedTable } from "./core/local/seed-rows.js";

/** The local-mode utilities under the app's name for them: seed and clear test data, on local targets only. */
export const localModeOptimizations = { seedTestData, clearTestData, compactDatabase } as const;
export type { CompactResult } from "./core/local/compact.js";
