/** What a migration run takes, reports while it runs, and returns: shared by the runner (migrate.ts) and the online runner (online.ts). */
import type { IndexBuildProgress } from "../../db/schema-changes.js";
import type { Migration } from "./records.js";

/** What a migration run is doing, for a progress display. */
export interface MigrateProgress {
  /** The migration ("" for a repair before any migration). */
  readonly tag: string;
  readonly action: string;
  /** The server's progress of the index build under way. */
  readonly build?: IndexBuildProgress;
}

export interface MigrateOptions {
  readonly dryRun?: boolean;
  /** Run each migration as written in one transaction, even where index changes could run online. */
  readonly offline?: boolean;
  readonly onProgress?: (event: MigrateProgress) => void;
}

export interface MigrateResult {
  /** Tags applied by this run, in order. */
  readonly applied: readonly string[];
  /** How many were already applied before this run. */
  readonly alreadyApplied: number;
  readonly dryRun: boolean;
  /** With dryRun: the statements that would run, per pending migration. */
  readonly plan: readonly Migration[];
  /** Index changes were applied online (without blocking writes). */
  readonly online: boolean;
  /** INVALID indexes this run rebuilt, or dropped as its own leftovers. */
  readonly repairedIndexes: readonly string[];
  /** INVALID indexes that are not briefdb's: left alone. */
  readonly foreignInvalidIndexes?: readonly string[];
}

