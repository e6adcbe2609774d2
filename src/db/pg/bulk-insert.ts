/**
 * Bulk loading on PostgreSQL: multi-row INSERTs inside one transaction, each as large as the
 * protocol's 65,535-parameter limit allows, one batch in memory at a time.
 *
 * Not COPY: with postgres.js 3.4.9 a COPY … FROM STDIN that the server rejects after the last
 * chunk (a unique violation, say) never settles, so the transaction neither fails nor rolls back
 * and the connection is left "idle in transaction (aborted)" (porsager/postgres#1173). An INSERT
 * fails like any other statement.
 */
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type postgres from "postgres";
import type { BulkColumn, BulkRow, BulkWriter, Executor, Row } from "../database.js";
import { quoteIdentifier } from "../sql-text.js";

type StatementValues = postgres.ParameterOrJSON<never>[];

/** The extended protocol counts bind parameters in an unsigned 16-bit integer. */
const MAX_PARAMETERS = 65_535;
/** Past a thousand rows a statement gains no speed, only parse time. */
const MAX_ROWS_PER_STATEMENT = 1000;

const dialect = new PgDialect();

export async function pgBulkWrite<T>(client: postgres.Sql, operation: (writer: BulkWriter) => Promise<T>): Promise<T> {
  let result: T | undefined;
  await client.begin(async (tx) => {
    // Full-size chunks share one statement text: prepared once, unless prepared statements are off (PgBouncer).
    const prepare = client.options.prepare;
    result = await operation({
      ...clientTransactionExecutor(tx),
      insert: (table, columns, batches) => insertBatches(tx, prepare, table, columns, batches),
    });
  });
  return result as T;
}

/** Runs drizzle `sql` queries on the transaction's own connection. */
function clientTransactionExecutor(tx: postgres.TransactionSql): Executor {
  return {
    all: async <R extends Row>(query: SQL) => {
      const { sql, params } = dialect.sqlToQuery(query);
      return [...(await tx.unsafe(sql, params as StatementValues))] as unknown as R[];
    },
    run: async (query: SQL) => {
      const { sql, params } = dialect.sqlToQuery(query);
      return (await tx.unsafe(sql, params as StatementValues)).count;
    },
    exec: async (script: string) => void (await tx.unsafe(script)),
  };
}

async function insertBatches(
  tx: postgres.TransactionSql,
  prepare: boolean,
  table: string,
  columns: readonly BulkColumn[],
  batches: AsyncIterable<readonly BulkRow[]>,
): Promise<number> {
  const rowsPerStatement = Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(MAX_PARAMETERS / columns.length));
  const statements = new Map<number, string>();
  const statementFor = (rows: number) => {
    let text = statements.get(rows);
    if (text === undefined) {
      text = insertStatement(table, columns, rows);
      statements.set(rows, text);
    }
    return text;
  };
  let inserted = 0;
  for await (const batch of batches) {
    for (let start = 0; start < batch.length; start += rowsPerStatement) {
      const chunk = batch.slice(start, start + rowsPerStatement);
      await tx.unsafe(statementFor(chunk.length), parametersOf(chunk, columns), { prepare });
      inserted += chunk.length;
    }
  }
  return inserted;
}

function insertStatement(table: string, columns: readonly BulkColumn[], rows: number): string {
  const names = columns.map((column) => quoteIdentifier(column.name)).join(", ");
  const tuples: string[] = [];
  for (let row = 0, n = 1; row < rows; row++) {
    const placeholders = columns.map(() => `$${n++}`);
    tuples.push(`(${placeholders.join(", ")})`);
  }
  return `INSERT INTO ${quoteIdentifier(table)} (${names}) VALUES ${tuples.join(", ")}`;
}

/** The rows' values, flat; timestamps as ISO 8601 text, which timestamptz reads exactly. */
function parametersOf(rows: readonly BulkRow[], columns: readonly BulkColumn[]): StatementValues {
  const values: Array<string | number | boolean | null> = [];
  for (const row of rows) {
    for (let i = 0; i < columns.length; i++) {
      const value = row[i] ?? null;
      values.push(columns[i]?.type === "timestamp" && typeof value === "number" ? new Date(value).toISOString() : value);
    }
  }
  return values as StatementValues;
}
