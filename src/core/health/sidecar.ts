/**
 * The health and metrics sidecar `briefdb serve` runs: node:http on loopback by default, with
 * /healthz (liveness), /readyz (readiness: the health report) and /metrics (Prometheus). A port
 * that cannot be had is a BriefdbError (USAGE: choose another --port or --host), never a crash.
 */
import { createServer, STATUS_CODES, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { BriefDatabase } from "../../db/database.js";
import { BriefdbError } from "../../errors.js";
import { createDashboard, SECURITY_HEADERS, type DashboardOptions } from "../dashboard/handler.js";
import type { RoleRequirement } from "./replication.js";
import { healthHandler, livenessHandler, metricsHandler, toNodeListener, type RequestHandler } from "./endpoints.js";

export const DEFAULT_SIDECAR_PORT = 9464;
export const DEFAULT_SIDECAR_HOST = "127.0.0.1";
export const SIDECAR_ROUTES = ["/healthz", "/readyz", "/metrics"] as const;

export interface SidecarOptions {
  /** 0 picks a free port. Default 9464 (Prometheus exporters' range). */
  readonly port?: number;
  readonly host?: string;
  /** How long close() lets requests in flight finish before it cuts them; default 10 s. */
  readonly graceMs?: number;
  /** Also serve the live dashboard at / (its page, assets and /api/*: docs/dashboard.md). Default: not served. */
  readonly dashboard?: DashboardOptions;
  /** /readyz is 503 unless the server has this role (`serve --require`). */
  readonly require?: RoleRequirement;
  /**
   * How long a client may take to send a request's headers before it is answered 408 and cut
   * (a slowloris holds a connection for as long as it may); default 10 s, where Node says 60.
   */
  readonly headersTimeoutMs?: number;
}

const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** A whole request (headers and body) may take this long, or the headers' own timeout if longer. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface Sidecar {
  /** Where it listens, e.g. http://127.0.0.1:9464 */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, lets requests in flight finish (up to graceMs), resolves when the server is closed. */
  close(): Promise<void>;
}

export async function startSidecar(db: BriefDatabase, options: SidecarOptions = {}): Promise<Sidecar> {
  const port = options.port ?? DEFAULT_SIDECAR_PORT;
  const host = options.host ?? DEFAULT_SIDECAR_HOST;
  const routes: Record<string, RequestHandler> = {
    "/healthz": livenessHandler(),
    "/readyz": healthHandler(db, options.require === undefined ? {} : { require: options.require }),
    "/metrics": metricsHandler(db),
  };
  const notFound: RequestHandler = async () =>
    Response.json({ ok: false, error: "not found", routes: SIDECAR_ROUTES }, { status: 404 });
  const dashboard = options.dashboard === undefined ? undefined : createDashboard(db, options.dashboard);
  const route = (path: string): RequestHandler => {
    const fixed = routes[path];
    if (fixed) return fixed;
    if (dashboard && (path === "/" || path.startsWith("/assets/") || path.startsWith("/api/"))) return dashboard.handle;
    return notFound;
  };
  const listener = toNodeListener((request) => route(new URL(request.url).pathname)(request));
  const headersTimeout = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const limits = {
    headersTimeout,
    requestTimeout: Math.max(REQUEST_TIMEOUT_MS, headersTimeout),
    // how often Node looks for requests past those timeouts (its default, 30 s, would let them run on)
    connectionsCheckingInterval: Math.min(1000, headersTimeout),
  };
  const server = createServer(limits, (incoming, outgoing) => {
    // every answer, whichever route or failure gives it, carries them (the handlers' own win where they set one)
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) outgoing.setHeader(name, value);
    listener(incoming, outgoing);
  });
  server.on("clientError", answerClientError);
  let closing = false;
  // once closing, a connection whose answer went out is closed at once, not at its keep-alive timeout
  server.on("request", (_request, response: ServerResponse) =>
    response.on("finish", () => closing && setImmediate(() => server.closeIdleConnections())),
  );
  await listen(server, port, host);
  // sampled from the start, so that the latency chart has a history when the page is first opened
  if (dashboard) void dashboard.live.start();
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}`,
    port: bound,
    // scrapes in flight finish (a scraper must not read half an exposition), for a grace period
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        dashboard?.close();
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
        const deadline = setTimeout(() => server.closeAllConnections(), options.graceMs ?? DEFAULT_GRACE_MS);
      }),
  };
}

/**
 * A request node:http could not parse (a malformed request line or header, headers past its 16 kB):
 * answered as Node would (400, 431, 408), but with the security headers and a short text.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || answering?.headersSent === true || error.code === "ECONNRESET") {
    socket.destroy();
    return;
  }
  const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  const body = `${STATUS_CODES[status]}\n`;
  const headers = Object.entries({ ...SECURITY_HEADERS, "content-type": "text/plain", "content-length": String(body.length), connection: "close" });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n${body}`);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => reject(listenError(error, port, host)));
    server.listen(port, host, () => resolve());
  });
}

function listenError(error: NodeJS.ErrnoException, port: number, host: string): BriefdbError {
  if (error.code === "EADDRINUSE") {
    return new BriefdbError("USAGE", `port ${port} on ${host} is in use`, "choose another --port, or stop what listens there");
  }
  if (error.code === "EACCES") return new BriefdbError("USAGE", `port ${port} on ${host} needs privileges`, "use a port above 1023");
  return new BriefdbError("USAGE", `cannot listen on ${host}:${port}: ${error.code ?? error.message}`, "check --host");
}
