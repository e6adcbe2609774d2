/**
 * briefdb's public face: the library the CLI is a thin layer over. Every function here that talks
 * to the database throws nothing but BriefdbErrors (docs/architecture.md, "Exit codes"): each is
 * exported through throwingBriefdbErrors, which reads a driver's error by the database it was given.
 */
import { throwingBriefdbErrors as boundary } from "./core/failures.js";
import * as clear from "./core/local/clear.js";
import * as seed from "./core/local/seed.js";
import * as compact from "./core/local/compact.js";
import * as migrating from "./core/migrate/migrate.js";
import * as records from "./core/migrate/records.js";
import * as status from "./core/migrate/status.js";
import * as hazards from "./core/migrate/hazards.js";
import * as tokens from "./core/ledger/tokens.js";
import * as holds from "./core/ledger/holds.js";
import * as holdChecks from "./core/ledger/hold-checks.js";
import * as users from "./core/ledger/users.js";
import * as race from "./core/race/race.js";
import * as httpRace from "./core/race/http-race.js";
import * as slowQueries from "./core/queries/slow-queries.js";
import * as probes from "./core/queries/probes.js";
import * as listings from "./core/queries/listings.js";

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
export const migrate = boundary(migrating.migrate);
export const assertMigrated = boundary(records.assertMigrated);
export { readMigrations } from "./core/migrate/records.js";
export type { MigrateResult, MigrateOptions, MigrateProgress } from "./core/migrate/result.js";
export type { Migration, PartialMigration } from "./core/migrate/records.js";
export const migrationStatus = boundary(status.migrationStatus);
export type {
  InvalidIndexStatus,
  MigrationStatus,
  NotValidConstraintStatus,
  PartialMigrationStatus,
} from "./core/migrate/status.js";
export const checkPendingMigrations = boundary(hazards.checkPendingMigrations);
export { DEFAULT_MAX_BLOCKING_ROWS } from "./core/migrate/hazards.js";
export type { HazardReport, StatementHazard } from "./core/migrate/hazards.js";
export type { LockHazard, InvalidIndex, IndexBuildProgress, NotValidConstraint, StatementKind } from "./db/schema-changes.js";
export { atomicTokenOperation } from "./core/ledger/tokens.js";
export const applyTokenOperation = boundary(tokens.applyTokenOperation);
export const getBalance = boundary(tokens.getBalance);
export const getHistory = boundary(tokens.getHistory);
export const verifyLedger = boundary(tokens.verifyLedger);
export type { TokenOperationOptions, TokenOperationResult, VerifyReport, Drift, LedgerEntry, TokenOperation } from "./core/ledger/tokens.js";
export { holdTokens, captureHold, releaseHold, listHolds } from "./core/ledger/holds.js";
export const applyHold = boundary(holds.applyHold);
export const applyCapture = boundary(holds.applyCapture);
export const applyRelease = boundary(holds.applyRelease);
export const getActiveHolds = boundary(holds.getActiveHolds);
export const getAvailableBalance = boundary(holds.getAvailableBalance);
export type { HoldOptions, HoldResult, SettlementResult, AvailableBalance, HoldRecord, HoldStatus } from "./core/ledger/holds.js";
export const checkHolds = boundary(holdChecks.checkHolds);
export type { HoldViolation } from "./core/ledger/hold-checks.js";
export type { LedgerOutOfOrder } from "./core/ledger/order-check.js";
export { parseTtl, assertHoldId, DEFAULT_HOLD_TTL_SECONDS, MIN_HOLD_TTL_SECONDS, MAX_HOLD_TTL_SECONDS } from "./core/ledger/hold-input.js";
export { parseAmount, MAX_AMOUNT } from "./core/ledger/amount.js";
export const createUser = boundary(users.createUser);
export const removeUser = boundary(users.removeUser);
export type { NewUser } from "./core/ledger/users.js";
export const runRaceTest = boundary(race.runRaceTest);
export const runHttpRace = boundary(httpRace.runHttpRace);
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
export const slowQueryReport = boundary(slowQueries.slowQueryReport);
export type { SlowQueryReport, SlowQueryReportOptions, SlowQueryAggregate } from "./core/queries/slow-queries.js";
export type { ServerStatement, ServerStatements, PlanReading, TimeSql, QueryInspector } from "./db/inspection.js";
export const probeCanonicalQueries = boundary(probes.probeCanonicalQueries);
export type { ProbeResult, IndexDefinition } from "./core/queries/probes.js";
export const publishedBriefsByViews = boundary(listings.publishedBriefsByViews);
export const publishedBriefsByDate = boundary(listings.publishedBriefsByDate);
export const userBriefs = boundary(listings.userBriefs);
export const briefReviews = boundary(listings.briefReviews);
export const userTokenHistory = boundary(listings.userTokenHistory);
export const briefBySlug = boundary(listings.briefBySlug);
export type { ListingOptions, ListingName, BriefSummary, Brief, Review } from "./core/queries/listings.js";
export type { BulkColumn, BulkRow, BulkWriter } from "./db/database.js";
export type { SeedOptions, SeedResult, SeedProgress, SeedCounts } from "./core/local/seed.js";
export type { ClearOptions, ClearResult, TableCounts, AppTable } from "./core/local/clear.js";
export type { SeedSizes, SeedScale } from "./core/local/seed-sizes.js";
export { seedTables } from "./core/local/seed-rows.js";
export type { SeedTableName, SeedTable } from "./core/local/seed-rows.js";

/** The local-mode utilities under the app's name for them: seed and clear test data, on local targets only. */
export const localModeOptimizations = {
  seedTestData: boundary(seed.seedTestData),
  clearTestData: boundary(clear.clearTestData),
  compactDatabase: boundary(compact.compactDatabase),
} as const;
export type { CompactResult } from "./core/local/compact.js";
