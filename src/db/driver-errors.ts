/** Helpers the dialects share to read driver errors. */

/** The error and its causes, outermost first (drizzle wraps driver errors in DrizzleQueryError). */
export function errorChain(error: unknown): Array<Record<string, unknown>> {
  const chain: Array<Record<string, unknown>> = [];
  let current: unknown = error;
  while (current !== null && typeof current === "object" && chain.length < 8) {
    chain.push(current as Record<string, unknown>);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/**
 * The first driver `code` along the cause chain. briefdb's own errors are skipped: a token
 * operation that failed inside the app's transaction answers a BriefdbError whose cause is the
 * driver's error, and an app that throws it out of `withTransaction` must still have a deadlock
 * or serialization failure (40P01, 40001) read as one, and the transaction run again.
 */
export function errorCode(error: unknown): string | undefined {
  for (const link of errorChain(error)) {
    if (link.name === "BriefdbError") continue;
    if (typeof link.code === "string") return link.code;
    // an error response with no SQLSTATE: PostgreSQL always sends one, so the server speaks
    // something else; SQLSTATE 08P01, protocol_violation (it was INTERNAL: "a bug in briefdb")
    if (link.name === "PostgresError") return "08P01";
  }
  return undefined;
}

/** The innermost error's message: the driver's own words, not drizzle's "Failed query: …". */
export function rootMessage(error: unknown): string {
  const chain = errorChain(error);
  for (let i = chain.length - 1; i >= 0; i--) {
    const message = chain[i]?.message;
    if (typeof message === "string" && message !== "") return message;
  }
  return String(error);
}

/**
 * The TLS handshake never finished: with sslmode=require or verify-*, a server that does not take
 * TLS answers the request with "no" and postgres.js goes on to a handshake the server never joins
 * (Node's own words). Nothing was sent: the connection never started.
 */
export function isTlsRefused(error: unknown): boolean {
  return errorCode(error) === "ECONNRESET" && /before secure TLS connection was established/.test(rootMessage(error));
}
