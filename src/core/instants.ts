/**
 * Instants as ISO strings for JSON and reports. A time read from the database may be one no Date
 * can hold — PostgreSQL's 'infinity', text another writer put in SQLite's integer column — and
 * toISOString() throws on it: such an instant is shown as null (or –), never a failed answer.
 */
export function isoInstant(at: Date | number): string | null {
  const date = typeof at === "number" ? new Date(Math.round(at)) : at;
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}
