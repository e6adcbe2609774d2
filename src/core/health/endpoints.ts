/**
 * Health and metrics as HTTP handlers on the web-standard Request and Response, so that they mount
 * as they are in a Next.js route handler, Hono, Bun or Deno, and through `toNodeListener` in
 * node:http or Express. `briefdb serve` runs them as a sidecar.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { BriefDatabase } from "../../db/database.js";
import { noAnswerError, withDeadline } from "./deadline.js";
import { checkDatabaseHealth } from "./health.js";
import type { RoleRequirement } from "./replication.js";
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
  /** Not ready unless the server is this (as `health --require`): e.g. "primary", so that traffic goes only where writes can. */
  readonly require?: RoleRequirement;
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
    const report = await withDeadline(checkDatabaseHealth(db, { samples: options.samples ?? 1, ...(options.require === undefined ? {} : { require: options.require }) }), timeoutMs);
    if (report === undefined) {
      const error = noAnswerError(timeoutMs);
      return json(503, { ok: false, healthy: false, reason: error.message, error }, request.method === "HEAD");
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
    void answer(handler, incoming, outgoing).catch(() => {
      // what went wrong stays on the server: its text may name internals the client must not read
      if (!outgoing.headersSent) outgoing.writeHead(500, { "content-type": "text/plain" });
      outgoing.end("internal error");
    });
  };
}

/** Methods the web-standard Request cannot carry (the Fetch standard forbids them): answered here. */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(["CONNECT", "TRACE", "TRACK"]);

async function answer(handler: RequestHandler, incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
  const method = (incoming.method ?? "GET").toUpperCase();
  if (FORBIDDEN_METHODS.has(method)) {
    outgoing.writeHead(405, { "content-type": "text/plain" });
    outgoing.end("method not allowed");
    return;
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const init: RequestInit & { duplex?: "half" } = { method, headers };
  if (method !== "GET" && method !== "HEAD") {
    const body = requestBody(incoming);
    if (body !== undefined) {
      init.body = body;
      init.duplex = "half";
    }
  }
  const url = requestUrl(incoming);
  if (url === undefined) {
    outgoing.writeHead(400, { "content-type": "text/plain", connection: "close" });
    outgoing.end("bad request: malformed Host header or request target");
    return;
  }
  const response = await handler(new Request(url, init));
  const outHeaders: Record<string, string | string[]> = Object.fromEntries(response.headers);
  // Headers joins repeated headers with ", ", which a Set-Cookie's own dates contain: each one apart
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) outHeaders["set-cookie"] = cookies;
  outgoing.writeHead(response.status, outHeaders);
  outgoing.end(response.body === null ? undefined : Buffer.from(await response.arrayBuffer()));
}

/** A host name, IPv4 address or [IPv6] literal, and maybe a port: no user info, path or space. */
const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]+)(?::\d{1,5})?$/;

/**
 * The request's URL from its Host header and its target, or undefined when either is malformed.
 * Only the origin form ("/path?query") is taken, and the host is checked apart: a target of
 * "//127.0.0.1/…" resolved against the Host as a relative URL would replace the host (and with it
 * the loopback check that stops DNS rebinding), and a Host of "x@127.0.0.1" would read as user info.
 */
function requestUrl(incoming: IncomingMessage): URL | undefined {
  const host = incoming.headers.host ?? "localhost";
  const target = incoming.url ?? "/";
  if (!HOST_HEADER.test(host) || !target.startsWith("/")) return undefined;
  try {
    return new URL(`http://${host}${target}`);
  } catch {
    return undefined;
  }
}

/**
 * The request's body: the stream as it comes, or — when middleware before us (express.json(),
 * express.text(), express.raw()) already read the stream into `request.body` — that body again.
 */
function requestBody(incoming: IncomingMessage): RequestInit["body"] | undefined {
  const parsed = (incoming as IncomingMessage & { body?: unknown }).body;
  if (!incoming.readableEnded && incoming.readable) return Readable.toWeb(incoming) as unknown as ReadableStream;
  if (parsed === undefined) return undefined;
  if (typeof parsed === "string") return parsed;
  if (Buffer.isBuffer(parsed)) return new Uint8Array(parsed);
  return JSON.stringify(parsed);
}

function onlyReads(request: Request): Response | undefined {
  if (request.method === "GET" || request.method === "HEAD") return undefined;
  return new Response(null, { status: 405, headers: { allow: "GET, HEAD" } });
}

function json(status: number, body: unknown, head: boolean): Response {
  return new Response(head ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...NO_STORE } });
}
