/**
 * `migrate --check`: for each pending statement, the lock it takes as briefdb will apply it, what
 * that lock blocks, and the size of the table it locks as the live database reports it. A
 * statement that blocks writes on a table above the threshold is a hazard: CI can stop the
 * deploy before the outage.
 */
import type { BriefDatabase } from "../db/database.js";
import type { LockHazard, StatementKind, TableSize } from "../db/schema-changes.js";
import { planMigrations } from "./migration-plan.js";
import { pendingMigrations } from "./migrations.js";

/** About 0.1 s of blocked writes for an index build here; smaller tables are not worth a stop. */
export const DEFAULT_MAX_BLOCKING_ROWS = 100_000;

export interface StatementHazard extends LockHazard {
  readonly tag: string;
  readonly statement: string;
  readonly kind: StatementKind;
  /** The table it locks (null when the parser names none). */
  readonly table: string | null;
  /** The table is created earlier in this run, so nobody uses it yet. */
  readonly newTable: boolean;
  readonly rows: number | null;
  readonly rowsEstimated: boolean;
  readonly bytes: number | null;
  /** briefdb applies it online (CONCURRENTLY), not as written. */
  readonly online: boolean;
  /** It blocks writes on a table above the threshold (or of unknown size). */
  readonly hazard: boolean;
}

export interface HazardReport {
  readonly offline: boolean;
  readonly maxBlockingRows: number;
  readonly statements: readonly StatementHazard[];
  readonly hazards: number;
}

export async function checkPendingMigrations(
  db: BriefDatabase,
  options: { offline?: boolean; maxBlockingRows?: number } = {},
): Promise<HazardReport> {
  const maxBlockingRows = options.maxBlockingRows ?? DEFAULT_MAX_BLOCKING_ROWS;
  const offline = options.offline === true;
  const pending = await pendingMigrations(db);
  const withShapes = await Promise.all(
    pending.map(async (migration) => ({ migration, shapes: await db.schemaChanges.describe(migration.statements) })),
  );
  const plans = planMigrations(withShapes, offline ? null : db.schemaChanges.online);
  const sizes = new Map<string, TableSize | null>();
  const sizeOf = async (table: string) => {
    if (!sizes.has(table)) sizes.set(table, await db.schemaChanges.tableSize(table));
    return sizes.get(table) ?? null;
  };
  const newTables = new Set<string>();
  const statements: StatementHazard[] = [];
  for (const plan of plans) {
    for (const [i, shape] of plan.shapes.entries()) {
      const online = plan.online[i] === true;
      const table = shape.kind === "drop-index" && shape.index !== null ? await db.schemaChanges.tableOfIndex(shape.index) : shape.table;
      const isNew = table !== null && newTables.has(table);
      if (shape.kind === "create-table" && table) newTables.add(table);
      const size = table === null || isNew || shape.kind === "create-table" ? null : await sizeOf(table);
      const rows = table === null ? null : size === null ? 0 : size.rows;
      const lock = db.schemaChanges.lockOf(shape, online);
      const hazard = table !== null && lock.blocksWrites && (rows === null || rows > maxBlockingRows);
      statements.push({
        tag: plan.migration.tag,
        statement: shape.text,
        kind: shape.kind,
        table,
        newTable: isNew || shape.kind === "create-table",
        rows,
        rowsEstimated: size?.estimated ?? false,
        bytes: size?.bytes ?? null,
        online,
        hazard,
        ...lock,
      });
    }
  }
  return { offline, maxBlockingRows, statements, hazards: statements.filter((s) => s.hazard).length };
}
