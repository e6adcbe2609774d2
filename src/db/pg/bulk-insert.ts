/**
 * Bulk loading on PostgreSQL: COPY … FROM STDIN in text format inside one transaction, fed by a
 * stream with backpressure, so a million rows cost one statement per table and no more memory
 * than a batch. No parameter limit applies, unlike a multi-row INSERT.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type postgres from "postgres";
import type { BulkColumn, BulkRow, BulkWriter, Executor, Row } from "../database.js";

type Parameters = postgres.ParameterOrJSON<never>[];

const dialect = new PgDialect();

export async function pgBulkWrite<T>(client: postgres.Sql, operation: (writer: BulkWriter) => Promise<T>): Promise<T> {
  let result: T | undefined;
  await client.begin(async (tx) => {
    result = await operation({ ...executorOver(tx), insert: (table, columns, batches) => copyInto(tx, table, columns, batches) });
  });
  return result as T;
}

/** Runs drizzle `sql` queries on the transaction's own connection. */
function executorOver(tx: postgres.TransactionSql): Executor {
  const compile = (query: SQL) => dialect.sqlToQuery(query);
  return {
    all: async <R extends Row>(query: SQL) => {
      const { sql, params } = compile(query);
      return [...(await tx.unsafe(sql, params as Parameters))] as unknown as R[];
    },
    run: async (query: SQL) => {
      const { sql, params } = compile(query);
      return (await tx.unsafe(sql, params as Parameters)).count;
    },
    exec: async (script: string) => void (await tx.unsafe(script)),
  };
}

async function copyInto(
  tx: postgres.TransactionSql,
  table: string,
  columns: readonly BulkColumn[],
  batches: AsyncIterable<readonly BulkRow[]>,
): Promise<number> {
  const names = columns.map((column) => quote(column.name)).join(", ");
  const target = await tx.unsafe(`COPY ${quote(table)} (${names}) FROM STDIN`).writable();
  let inserted = 0;
  async function* lines(): AsyncGenerator<string> {
    for await (const batch of batches) {
      yield batch.map((row) => copyLine(row, columns)).join("");
      inserted += batch.length;
    }
  }
  await pipeline(Readable.from(lines()), target);
  return inserted;
}

/** One row in COPY's text format: tab-separated, `\N` for NULL, backslash escapes. */
function copyLine(row: BulkRow, columns: readonly BulkColumn[]): string {
  let line = "";
  for (let i = 0; i < columns.length; i++) {
    if (i > 0) line += "\t";
    line += copyValue(row[i] ?? null, columns[i]?.type ?? "text");
  }
  return `${line}\n`;
}

function copyValue(value: string | number | boolean | null, type: BulkColumn["type"]): string {
  if (value === null) return "\\N";
  if (type === "timestamp") return new Date(value as number).toISOString();
  if (typeof value === "boolean") return value ? "t" : "f";
  if (typeof value === "number") return String(value);
  return value.replace(/[\\\t\n\r]/g, escapeChar);
}

function escapeChar(char: string): string {
  if (char === "\t") return "\\t";
  if (char === "\n") return "\\n";
  if (char === "\r") return "\\r";
  return "\\\\";
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
