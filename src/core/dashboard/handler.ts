/**
 * The live dashboard as one web-standard handler: the page and its assets (files shipped in the
 * package's web/dashboard/, nothing from a network) and the JSON endpoints it polls (docs/dashboard.md).
 * Read-only but for POST /api/verify, which runs `tokens verify` (itself read-only). Every answer
 * carries a strict Content-Security-Policy; with a token the API wants `Authorization: Bearer`;
 * without one it answers only requests addressed to a loopback name (no DNS rebinding).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { BriefDatabase } from "../../db/database.js";
import { isLoopbackHost } from "../../db/target.js";
import { toBriefdbError } from "../failures.js";
import { PACKAGE_ROOT } from "../../package-root.js";
import { noAnswerError, withDeadline } from "../health/deadline.js";
import type { RequestHandler } from "../health/endpoints.js";
import { createLiveSampler, type LiveOptions, type LiveSampler } from "./live.js";
import { ledgerPanel, overviewPanel, queriesPanel, runVerify, schemaPanel, type VerifyRun } from "./panels.js";

export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** How long a panel's read (or verify) may take before it answers 503 DB_UNREACHABLE, by default: as /readyz. */
const DEFAULT_READ_TIMEOUT_MS = 5000;

export const DASHBOARD_API = ["/api/overview", "/api/ledger", "/api/queries", "/api/schema", "/api/verify"] as const;

export interface DashboardOptions extends LiveOptions {
  /** A secret the JSON endpoints require as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** When set, the JSON endpoints answer 403 with this reason (serve beyond loopback without a token). */
  readonly refuse?: string;
  /** How long the queries and schema panels are reused before being read again; default 30 s. */
  readonly slowPanelMs?: number;
}

export interface Dashboard {
  readonly handle: RequestHandler;
  readonly live: LiveSampler;
  close(): void;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  "": { file: "index.html", type: "text/html; charset=utf-8" },
  "index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "assets/dashboard.js": { file: "dashboard.js", type: "text/javascript; charset=utf-8" },
  "assets/charts.js": { file: "charts.js", type: "text/javascript; charset=utf-8" },
  "assets/dashboard.css": { file: "dashboard.css", type: "text/css; charset=utf-8" },
  "assets/favicon.svg": { file: "favicon.svg", type: "image/svg+xml" },
};

export const DASHBOARD_ASSET_DIR = join(PACKAGE_ROOT, "web", "dashboard");

/** On every answer of the dashboard's (and of `serve`'s, whatever the route). */
export const SECURITY_HEADERS = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-resource-policy": "same-origin",
} as const;

/** The dashboard over `db`. Mount it at any path: the page uses relative URLs. */
export function createDashboard(db: BriefDatabase, options: DashboardOptions = {}): Dashboard {
  const live = createLiveSampler(db, options);
  const slowMs = options.slowPanelMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const tokenDigest = options.token === undefined ? undefined : digest(options.token);
  const files = new Map<string, Uint8Array>();
  let lastVerify: VerifyRun | null = null;
  let verifying: Promise<VerifyRun> | undefined;
  const cached = <T>(read: () => Promise<T>, ttl: number) => reuse(read, ttl);
  const queries = cached(() => queriesPanel(db, { windowMs: 60 * 60_000, probeRuns: 3 }), slowMs);
  const schema = cached(() => schemaPanel(db), slowMs);
  const ledger = cached(() => ledgerPanel(db, live), 1000);

  const api: Record<string, () => Promise<unknown>> = {
    overview: () => overviewPanel(db, live),
    ledger: async () => ({ ...(await ledger()), lastVerify }),
    queries,
    schema,
  };

  function asset(path: string): Response {
    const entry = ASSETS[path];
    if (!entry) return answer(404, "text/plain; charset=utf-8", "not found");
    let body = files.get(entry.file);
    if (body === undefined) files.set(entry.file, (body = new Uint8Array(readFileSync(join(DASHBOARD_ASSET_DIR, entry.file)))));
    return answer(200, entry.type, body, { "cache-control": "no-cache" });
  }

  async function verify(request: Request): Promise<Response> {
    if (!(request.headers.get("content-type") ?? "").startsWith("application/json")) {
      return json(415, { ok: false, error: "POST /api/verify takes content-type application/json" });
    }
    verifying ??= runVerify(db)
      .then((run) => (lastVerify = run))
      .finally(() => (verifying = undefined));
    return answerWithin(verifying, (run) => json(200, { ok: true, ...run }));
  }

  /** `read`'s answer, or 503 with the contract's code when it fails or the database does not answer in time. */
  async function answerWithin<T>(read: Promise<T>, respond: (value: T) => Response): Promise<Response> {
    try {
      const value = await withDeadline(read, timeoutMs);
      return value === undefined ? unavailable(noAnswerError(timeoutMs)) : respond(value);
    } catch (error) {
      return unavailable(error);
    }
  }

  /** 503 with the contract's code: a driver's failure read by the dialect, a bug's text kept on the server. */
  function unavailable(error: unknown): Response {
    const failure = toBriefdbError(error, db);
    const said = failure.code === "INTERNAL" ? { code: "INTERNAL", error: "internal error" } : { code: failure.code, error: failure.message };
    return json(503, { ok: false, ...said });
  }

  async function handleApi(request: Request, name: string): Promise<Response> {
    if (options.refuse !== undefined) return json(403, { ok: false, error: options.refuse });
    if (tokenDigest !== undefined && !bearerMatches(request, tokenDigest)) {
      return json(401, { ok: false, error: "this dashboard wants its token: Authorization: Bearer <token>" }, { "www-authenticate": 'Bearer realm="briefdb"' });
    }
    if (name === "verify") {
      if (request.method !== "POST") return json(405, { ok: false, error: "POST runs tokens verify" }, { allow: "POST" });
      return verify(request);
    }
    const read = api[name];
    if (!read) return json(404, { ok: false, error: "not found", endpoints: DASHBOARD_API });
    if (request.method !== "GET" && request.method !== "HEAD") return json(405, { ok: false, error: "read-only" }, { allow: "GET, HEAD" });
    // the sampler's first tick too: on a database that stopped answering it would wait as long
    const reading = live.start().then(read);
    return answerWithin(reading, (value) => json(200, { ok: true, ...(value as object) }));
  }

  return {
    live,
    close: () => live.stop(),
    handle: async (request) => {
      const url = new URL(request.url);
      if (tokenDigest === undefined && !isLoopbackHost(url.hostname)) {
        // no token: only a page the user opened on a loopback name may read it (DNS rebinding)
        return json(421, { ok: false, error: "open the dashboard on a loopback address (127.0.0.1, localhost), or start serve with --token" });
      }
      const crossSite = request.headers.get("origin");
      if (crossSite !== null && crossSite !== url.origin) return json(403, { ok: false, error: "cross-origin requests are refused" });
      const path = url.pathname.replace(/^\/+/, "");
      if (path.startsWith("api/")) return handleApi(request, path.slice(4));
      if (request.method !== "GET" && request.method !== "HEAD") return answer(405, "text/plain; charset=utf-8", "read-only", { allow: "GET, HEAD" });
      return asset(path);
    },
  };
}

/** One read at a time, its answer reused for `ttl` ms: several open pages cost one read. */
function reuse<T>(read: () => Promise<T>, ttl: number): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (last === undefined || now - last.at >= ttl) {
      const value = read();
      last = { at: now, value };
      value.catch(() => (last = undefined));
    }
    return last.value;
  };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function bearerMatches(request: Request, expected: Buffer): boolean {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer (.+)$/.exec(header);
  return match !== null && timingSafeEqual(digest(match[1]!), expected);
}

function answer(status: number, type: string, body: string | Uint8Array, extra: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": type, ...SECURITY_HEADERS, ...extra } });
}

function json(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return answer(status, "application/json", JSON.stringify(body), { "cache-control": "no-store", ...extra });
}
