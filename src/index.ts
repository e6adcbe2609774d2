/** briefdb's public face: the library the CLI is a thin layer over. */
import { clearTestData } from "./core/clear.js";
import { seedTestData } from "./core/seed.js";

export { openDatabase, openTarget } from "./db/open.js";
export type { BriefDatabase, Executor, OpenOptions, TransactionOptions, DialectCapabilities } from "./db/database.js";
export { parseTarget, redactUrl, isLocalTarget, assertLocalTarget, DEFAULT_URL } from "./db/target.js";
export type { Target, SqliteTarget, PgTarget, DialectName } from "./db/target.js";
export { BriefdbError, EXIT_CODES, isBriefdbError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { withTransaction } from "./core/transaction.js";
export type { Result } from "./core/transaction.js";
export { checkDatabaseHealth } from "./core/health.js";
export type { HealthReport } from "./core/health.js";
export { migrate, migrationStatus, assertMigrated, readMigrations } from "./core/migrations.js";
export type { Migration, MigrationStatus, MigrateResult } from "./core/migrations.js";
export type { BulkColumn, BulkRow, BulkWriter } from "./db/database.js";
export type { SeedOptions, SeedResult, SeedProgress, SeedCounts } from "./core/seed.js";
export type { ClearOptions, ClearResult, TableCounts, AppTable } from "./core/clear.js";
export type { SeedSizes, SeedScale } from "./core/test-data/sizes.js";
export type { SeedTableName } from "./core/test-data/rows.js";

/** The source document's local-mode utilities: seed and clear test data, on local targets only. */
export const localModeOptimizations = { seedTestData, clearTestData } as const;
