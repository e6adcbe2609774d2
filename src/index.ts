/** briefdb's public face: the library the CLI is a thin layer over. */
import { clearTestData } from "./core/clear.js";
import { seedTestData } from "./core/seed.js";

export { openDatabase, openTarget } from "./db/open.js";
export type {
  BriefDatabase,
  Executor,
  IntegrityCheck,
  IsolationLevel,
  Transaction,
  PoolUse,
  OpenOptions,
  TransactionOptions,
} from "./db/database.js";
export type { PgBriefDatabase, PgOrm, PgTx } from "./db/pg/database.js";
export type { SqliteBriefDatabase, SqliteOrm } from "./db/sqlite/database.js";
export { parseTarget, redactUrl, isLocalTarget, assertLocalTarget, DEFAULT_URL } from "./db/target.js";
export type { Target, SqliteTarget, PgTarget, DialectName } from "./db/target.js";
export { BriefdbError, EXIT_CODES, isBriefdbError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { withTransaction } from "./core/transaction.js";
export type { Result } from "./core/transaction.js";
export { checkDatabaseHealth } from "./core/health.js";
export type { HealthOptions, HealthReport, IntegrityStatus } from "./core/health.js";
export { migrate, assertMigrated, readMigrations } from "./core/migrations.js";
export type { Migration, MigrateResult, MigrateOptions, MigrateProgress, PartialMigration } from "./core/migrations.js";
export { migrationStatus } from "./core/migration-status.js";
export type {
  InvalidIndexStatus,
  MigrationStatus,
  NotValidConstraintStatus,
  PartialMigrationStatus,
} from "./core/migration-status.js";
export { checkPendingMigrations, DEFAULT_MAX_BLOCKING_ROWS } from "./core/migration-hazards.js";
export type { HazardReport, StatementHazard } from "./core/migration-hazards.js";
export type { LockHazard, InvalidIndex, IndexBuildProgress, NotValidConstraint, StatementKind } from "./db/schema-changes.js";
export { atomicTokenOperation, applyTokenOperation, getBalance, getHistory, verifyLedger } from "./core/tokens.js";
export type { TokenOperationOptions, TokenOperationResult, VerifyReport, Drift, LedgerEntry, TokenOperation } from "./core/tokens.js";
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
} from "./core/holds.js";
export type { HoldOptions, HoldResult, SettlementResult, AvailableBalance, HoldRecord, HoldStatus } from "./core/holds.js";
export { checkHolds } from "./core/hold-checks.js";
export type { HoldViolation } from "./core/hold-checks.js";
export { parseTtl, assertHoldId, DEFAULT_HOLD_TTL_SECONDS, MIN_HOLD_TTL_SECONDS, MAX_HOLD_TTL_SECONDS } from "./core/hold-input.js";
export { parseAmount, MAX_AMOUNT } from "./core/amount.js";
export { createUser, removeUser } from "./core/users.js";
export type { NewUser } from "./core/users.js";
export { runRaceTest } from "./core/race.js";
export { runHttpRace } from "./core/race-http.js";
export type { HttpRaceOptions, HttpRaceReport, StatusClass, ClassLatency } from "./core/race-http.js";
export { parseRequestTemplate, DEFAULT_BODY } from "./core/http-template.js";
export type { RequestTemplate, RequestTemplateInput } from "./core/http-template.js";
export { healthHandler, livenessHandler, metricsHandler, toNodeListener } from "./core/endpoints.js";
export type { RequestHandler, HealthHandlerOptions } from "./core/endpoints.js";
export { createMetricsCollector, QUERY_BUCKETS, type MetricsOptions } from "./core/metrics.js";
export type { MetricsCollector } from "./core/metrics.js";
export { tokenCounts } from "./core/token-counters.js";
export type { TokenCount, TokenOutcome } from "./core/token-counters.js";
export { startSidecar, DEFAULT_SIDECAR_PORT, DEFAULT_SIDECAR_HOST, SIDECAR_ROUTES } from "./core/sidecar.js";
export type { Sidecar, SidecarOptions } from "./core/sidecar.js";
export type { RaceOptions, RaceReport, Invariant } from "./core/race.js";
export type { RaceStrategy } from "./core/race-racer.js";
export { monitorQuery, flushQueryLog, DEFAULT_WARN_MS, DEFAULT_SLOW_MS } from "./core/monitor.js";
export type { MonitorOptions, MonitorLogger } from "./core/monitor.js";
export { slowQueryReport } from "./core/slow-queries.js";
export type { SlowQueryReport, SlowQueryReportOptions, SlowQueryAggregate } from "./core/slow-queries.js";
export type { ServerStatement, ServerStatements, PlanReading, TimeSql, QueryInspector } from "./db/inspection.js";
export { probeCanonicalQueries } from "./core/probes.js";
export type { ProbeResult, IndexDefinition } from "./core/probes.js";
export {
  publishedBriefsByViews,
  publishedBriefsByDate,
  userBriefs,
  briefReviews,
  userTokenHistory,
  briefBySlug,
} from "./core/listings.js";
export type { ListingOptions, ListingName, BriefSummary, Brief, Review } from "./core/listings.js";
export type { BulkColumn, BulkRow, BulkWriter } from "./db/database.js";
export type { SeedOptions, SeedResult, SeedProgress, SeedCounts } from "./core/seed.js";
export type { ClearOptions, ClearResult, TableCounts, AppTable } from "./core/clear.js";
export type { SeedSizes, SeedScale } from "./core/test-data/sizes.js";
export { seedTables } from "./core/test-data/rows.js";
export type { SeedTableName, SeedTable } from "./core/test-data/rows.js";
export { PG_DEDUCT_STATEMENT } from "./db/pg/ledger.js";
export { PG_CAPTURE_STATEMENT, PG_HOLD_STATEMENT } from "./db/pg/holds.js";

/** The source document's local-mode utilities: seed and clear test data, on local targets only. */
export const localModeOptimizations = { seedTestData, clearTestData } as const;
