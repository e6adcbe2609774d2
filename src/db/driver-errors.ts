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

/** The first `code` property along the cause chain. */
export function errorCode(error: unknown): string | undefined {
  for (const link of errorChain(error)) {
    if (typeof link.code === "string") return link.code;
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
