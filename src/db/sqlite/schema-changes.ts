/**
 * SQLite's answers for schema changes: one writer at a time on the whole file, so every migration
 * statement holds the write lock (readers carry on, in WAL mode) for as long as it runs — an index
 * build for as long as it reads the table. Row counts are exact (count(*)). There are no online
 * index builds, no INVALID indexes and no NOT VALID constraints.
 */
import { sql } from "drizzle-orm";
import type { Executor } from "../database.js";
import type { InvalidIndex, LockHazard, NotValidConstraint, SchemaChanges, TableSize } from "../schema-changes.js";
import { describeStatements, type StatementKind, type StatementShape } from "../statement-shape.js";

/** ALTER TABLE in any form: SQLite may rewrite or check the whole table under the write lock. */
const ALTERS: ReadonlySet<StatementKind> = new Set(["add-foreign-key", "add-check", "add-column", "validate-constraint", "alter-table"]);

export class SqliteSchemaChanges implements SchemaChanges {
  readonly online = null;
  readonly ownSchema = "main";

  constructor(private readonly db: Executor) {}

  /** drizzle-kit's SQLite files quote names with backticks; the parser reads them as "names". */
  describe(statements: readonly string[]): Promise<StatementShape[]> {
    return describeStatements(statements.map(backticksToQuotes)).then((shapes) =>
      shapes.map((shape, i) => ({ ...shape, text: statements[i] ?? shape.text })),
    );
  }

  lockOf(shape: StatementShape): LockHazard {
    const holds = shape.kind === "create-index" ? "while it builds the index" : ALTERS.has(shape.kind) ? "until the statement ends" : "brief";
    return { lock: "write lock (whole database)", blocksReads: false, blocksWrites: true, holds };
  }

  async tableOfIndex(index: string): Promise<string | null> {
    const [row] = await this.db.all<{ table: string }>(sql`SELECT tbl_name AS "table" FROM sqlite_master WHERE type = 'index' AND name = ${index}`);
    return row?.table ?? null;
  }

  async tableSize(table: string): Promise<TableSize | null> {
    const [found] = await this.db.all(sql`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ${table}`);
    if (found === undefined) return null;
    const [row] = await this.db.all<{ n: number }>(sql`SELECT count(*) AS n FROM ${sql.identifier(table)}`);
    return { rows: Number(row?.n ?? 0), estimated: false, bytes: null };
  }

  async invalidIndexes(): Promise<InvalidIndex[]> {
    return [];
  }

  /** SQLite checks a constraint against every row when it is made: there is no NOT VALID. */
  async notValidConstraints(): Promise<NotValidConstraint[]> {
    return [];
  }
}

/** `name` → "name", outside string literals; a doubled backtick inside a name is one backtick. */
function backticksToQuotes(text: string): string {
  let out = "";
  let quote: "'" | "`" | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quote === null) {
      if (ch === "'" || ch === "`") quote = ch;
      out += ch === "`" ? '"' : ch;
    } else if (ch === quote) {
      if (text[i + 1] === quote) {
        out += quote === "`" ? "`" : "''";
        i++;
      } else {
        quote = null;
        out += ch === "`" ? '"' : ch;
      }
    } else {
      out += quote === "`" && ch === '"' ? '""' : ch;
    }
  }
  return out;
}
