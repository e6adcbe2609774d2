/**
 * Bulk loading on SQLite: one prepared INSERT run row by row inside a single IMMEDIATE
 * transaction. better-sqlite3 is synchronous, so the batches are what let the event loop breathe
 * (a progress bar can redraw between two of them) without ever opening a second transaction.
 */
import type Database from "better-sqlite3";
import type { BulkColumn, BulkRow, BulkWriter } from "../database.js";
import type { Executor } from "../executor.js";
import { quoteIdentifier } from "../sql-text.js";

/** `tx`, an open transaction on `client`, able to bulk-insert too. */
export function bulkWriterOver(tx: Executor, client: Database.Database): BulkWriter {
  return { ...tx, insert: (table, columns, batches) => insertBatches(client, table, columns, batches) };
}

async function insertBatches(
  client: Database.Database,
  table: string,
  columns: readonly BulkColumn[],
  batches: AsyncIterable<readonly BulkRow[]>,
): Promise<number> {
  const names = columns.map((column) => quoteIdentifier(column.name)).join(", ");
  const placeholders = columns.map(() => "?").join(", ");
  const statement = client.prepare(`INSERT INTO ${quoteIdentifier(table)} (${names}) VALUES (${placeholders})`);
  // SQLite has no boolean type: drizzle stores 0/1, and better-sqlite3 refuses to bind true/false.
  const booleans = columns.flatMap((column, index) => (column.type === "boolean" ? [index] : []));
  let inserted = 0;
  for await (const batch of batches) {
    for (const row of batch) statement.run(booleans.length === 0 ? row : withBooleansAsIntegers(row, booleans));
    inserted += batch.length;
  }
  return inserted;
}

function withBooleansAsIntegers(row: BulkRow, booleans: readonly number[]): BulkRow {
  const copy = [...row];
  for (const index of booleans) copy[index] = copy[index] === true ? 1 : copy[index] === false ? 0 : copy[index] ?? null;
  return copy;
}
