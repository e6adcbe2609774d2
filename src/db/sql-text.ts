/** SQL text that both dialects write the same way. */

/** An identifier (table or column name) quoted for SQL: "name", inner quotes doubled. */
export function quoteIdentifier(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
