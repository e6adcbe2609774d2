/** Cancelling a PostgreSQL statement in flight when the caller's signal aborts (deducts, credits, hold writes). */
/**
 * Awaits `query`; aborting `signal` meanwhile sends the cancel request for it (a hold write's too,
 * ./holds.ts), and the query's own answer is what resolves or rejects: cancelled, or committed first.
 */
export async function cancellable<T>(query: Promise<T> & { cancel(): void }, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return query;
  const cancel = () => cancelOnServer(query);
  signal.addEventListener("abort", cancel, { once: true });
  try {
    return await query;
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}

/**
 * Sends the cancel request for `query` (or takes it off the queue if it was not sent). postgres.js's
 * own `query.cancel()` drops the promise of that request, which rejects unhandled (and ends the
 * process) when the server cannot be reached for it; here it is caught: the query itself then
 * fails with the lost connection, which is what the caller reads.
 */
export function cancelOnServer(query: { cancel(): void }): void {
  const internal = query as unknown as { canceller?: ((q: unknown) => Promise<void>) | null };
  const canceller = internal.canceller;
  if (typeof canceller !== "function") {
    query.cancel();
    return;
  }
  internal.canceller = null;
  canceller(query).catch(() => {});
}
