/**
 * Health and metrics as HTTP handlers on the web-standard Request and Response, so that they mount
 * as they are in a Next.js route handler, Hono, Bun or Deno, and through `toNodeListener` in
 * node:http or Express. `briefdb serve` runs them as a sidecar.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { BriefDatabase } from "../../db/database.js";
import { withDeadline } from "./deadline.js";
import { checkDatabaseHealth } from "./health.js";
import { createMetricsCollector, type MetricsOptions } from "./metrics.js";

export type RequestHandler = (request: Request) => Promise<Response>;

export interface HealthHandlerOptions {
  /** Round trips timed per check; default 1 (a probe runs often). */
  readonly samples?: number;
  /**
   * How long a check may take before the answer is 503 (default 5000 ms): a database that hangs
   * (a lock held on the migrations table, a server that stopped answering) must not hang the probe.
   */
  readonly timeoutMs?: number;
}

const DEFAULT_HEALTH_TIMEOUT_MS = 5000;

const NO_STORE = { "cache-control": "no-store" } as const;

/**
 * Readiness: 200 with the health report as JSON when the database is reachable and migrated,
 * 503 with the reason otherwise.
 */
export function healthHandler(db: BriefDatabase, options: HealthHandlerOptions = {}): RequestHandler {
  return async (request) => {
    const refused = onlyReads(request);
    if (refused) return refused;
    const timeoutMs = options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
    const report = await withDeadline(checkDatabaseHealth(db, { samples: options.samples ?? 1 }), timeoutMs);
    if (report === undefined) {
      const reason = `the database did not answer within ${timeoutMs} ms`;
      return json(503, { ok: false, healthy: false, reason }, request.method === "HEAD");
    }
    const body = {
      ok: report.healthy,
      ...(report.healthy ? {} : { reason: report.problems.join("; ") }),
      ...report,
    };
    return json(report.healthy ? 200 : 503, body, request.method === "HEAD");
  };
}

/** Liveness: 200 while the process answers at all; it never touches the database. */
export function livenessHandler(): RequestHandler {
  return async (request) => onlyReads(request) ?? json(200, { ok: true, status: "alive" }, request.method === "HEAD");
}

/** Prometheus exposition of briefdb's metrics (see metrics.ts), read fresh on every scrape. */
export function metricsHandler(db: BriefDatabase, options: MetricsOptions = {}): RequestHandler {
  const collector = createMetricsCollector(db, options);
  return async (request) => {
    const refused = onlyReads(request);
    if (refused) return refused;
    const text = await collector.scrape();
    const headers = { "content-type": collector.registry.contentType, ...NO_STORE };
    return new Response(request.method === "HEAD" ? null : text, { status: 200, headers });
  };
}

/** A web-standard handler as a node:http (or Express) listener. */
export function toNodeListener(handler: RequestHandler): (request: IncomingMessage, response: ServerResponse) => void {
  return (incoming, outgoing) => {
    void answer(handler, incoming, outgoing).catch((error: unknown) => {
      if (!outgoing.headersSent) outgoing.writeHead(500, { "content-type": "text/plain" });
      outgoing.end(`internal error: ${error instanceof Error ? error.message : String(error)}`);
    });
  };
}

async function answer(handler: RequestHandler, incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const method = incoming.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = { method, headers };
  if (hasBody) {
    init.body = Readable.toWeb(incoming) as unknown as ReadableStream;
    init.duplex = "half";
  }
  const request = new Request(new URL(incoming.url ?? "/", `http://${incoming.headers.host ?? "localhost"}`), init);
  const response = await handler(request);
  outgoing.writeHead(response.status, Object.fromEntries(response.headers));
  outgoing.end(response.body === null ? undefined : Buffer.from(await response.arrayBuffer()));
}

function onlyReads(request: Request): Response | undefined {
  if (request.method === "GET" || request.method === "HEAD") return undefined;
  return new Response(null, { status: 405, headers: { allow: "GET, HEAD" } });
}

function json(status: number, body: unknown, head: boolean): Response {
  return new Response(head ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...NO_STORE } });
}
