/**
 * The live dashboard's handler and its JSON endpoints on both dialects (the figures each panel
 * answers, read from real databases), its safety (CSP on every answer, the token, loopback names
 * only without one, cross-origin writes refused, read-only but for verify), and `briefdb serve`'s
 * --token through the built CLI. The page itself in a real browser: dashboard-browser.test.ts.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, captureHold, holdTokens, monitorQuery, flushQueryLog, openDatabase } from "../src/index.js";
import { createDashboard, DASHBOARD_CSP, type Dashboard } from "../src/core/dashboard/handler.js";
import { holdIdAt } from "../src/core/dashboard/live.js";
import { cli, DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser, type TestContext } from "./support/setup.js";
import { startServe } from "./support/serve.js";

const HOSTILE = "<img src=x onerror=alert(1)>";
const TOKEN = "dashboard-test-token-0123456789";

type Json = Record<string, any>;

function request(dashboard: Dashboard, path: string, init: RequestInit & { host?: string } = {}): Promise<Response> {
  return dashboard.handle(new Request(`http://${init.host ?? "127.0.0.1:9464"}${path}`, init));
}

async function getJson(dashboard: Dashboard, path: string, init: RequestInit & { host?: string } = {}): Promise<{ status: number; body: Json }> {
  const response = await request(dashboard, path, init);
  return { status: response.status, body: (await response.json()) as Json };
}

describe.each(DIALECTS)("%s: the dashboard's JSON endpoints", (dialect) => {
  let t: TestContext;
  let dashboard: Dashboard;

  beforeAll(async () => {
    t = await initTest(dialect);
    dashboard = createDashboard(t.db, { intervalMs: 60_000, points: 10 });
  });
  afterAll(async () => {
    dashboard?.close();
    await destroyTest(t?.db);
  });

  it("overview: healthy, the redacted target, server version, migrations, a latency series sampled by the server", async () => {
    const { status, body } = await getJson(dashboard, "/api/overview");
    expect(status).toBe(200);
    expect(body).toMatchObject({ ok: true, healthy: true, dialect, problems: [], migrations: { pending: 0 }, target: t.db.target.display });
    expect(body.target).not.toContain("briefdb-test-s3cret");
    expect(body.serverVersion).toEqual(expect.any(String));
    expect(body.role).toMatch(dialect === "sqlite" ? /^embedded$/ : /^primary, as postgres$/);
    expect(body.series.length).toBeGreaterThan(0);
    expect(body.series.at(-1).latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("ledger: operations by kind from the database, active holds, this process's refusals and latency, recent rows exact", async () => {
    const user = await newUser(t.db, { id: HOSTILE, balance: 50 });
    expect((await atomicTokenOperation(t.db, user, "deduct", 5, HOSTILE)).success).toBe(true);
    expect((await atomicTokenOperation(t.db, user, "deduct", 500, "too much")).success).toBe(false);
    const kept = await holdTokens(t.db, user, 7, "kept");
    const captured = await holdTokens(t.db, user, 3, "captured");
    if (!kept.success || !captured.success) throw new Error("holds were refused");
    expect((await captureHold(t.db, captured.data.holdId, 2)).success).toBe(true);
    await dashboard.live.start();
    await dashboard.live.sample(); // a tick after the writes: it counts what the database holds
    const { body } = await getJson(dashboard, "/api/ledger");
    expect(body.totals.ops).toMatchObject({ credit: 1, deduct: 1, hold: 2, capture: 1 });
    expect(body.totals.refused.INSUFFICIENT_BALANCE).toBeGreaterThanOrEqual(1);
    expect(body.activeHolds).toEqual({ count: 1, tokens: 7 });
    expect(body.recent[0]).toMatchObject({ userId: HOSTILE, operation: "capture", amount: -2 });
    expect(body.recent.find((r: Json) => r.operation === "deduct")).toMatchObject({ userId: HOSTILE, reason: HOSTILE, amount: -5 });
    const deducts = body.process.latency.find((l: Json) => l.operation === "deduct");
    expect(deducts.counts.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThanOrEqual(2);
    expect(body.batchSizes.counts.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThanOrEqual(3);
  });

  it("queries: the slow samples of the last hour with a histogram per name, and every canonical probe's plan", async () => {
    for (const ms of [0, 0, 0]) await monitorQuery(HOSTILE, () => ms, { db: t.db, warnMs: 0, slowMs: 0, logger: () => {} });
    await flushQueryLog();
    const { body } = await getJson(dashboard, "/api/queries");
    const row = body.recorded.find((r: Json) => r.name === HOSTILE);
    expect(row).toMatchObject({ count: 3, failed: 0 });
    expect(row.histogram.counts.reduce((a: number, b: number) => a + b, 0)).toBe(3);
    expect(body.probes.length).toBeGreaterThan(0);
    for (const probe of body.probes) expect(probe).toMatchObject({ name: expect.any(String), usesIndex: expect.any(Boolean), plan: expect.any(Array) });
  });

  it("schema: each migration applied, no INVALID index, no NOT VALID constraint, the tables' sizes", async () => {
    const { body } = await getJson(dashboard, "/api/schema");
    expect(body.migrations.length).toBeGreaterThan(0);
    expect(body.migrations.every((m: Json) => m.state === "applied")).toBe(true);
    expect(body.invalidIndexes).toEqual([]);
    expect(body.notValidConstraints).toEqual([]);
    expect(body.tables.map((x: Json) => x.table)).toContain("token_transactions");
  });

  it("POST /api/verify runs tokens verify (JSON only); GET is 405; the ledger panel then carries the last run", async () => {
    expect((await request(dashboard, "/api/verify", { method: "POST", body: "x" })).status).toBe(415);
    expect((await request(dashboard, "/api/verify")).status).toBe(405);
    const { status, body } = await getJson(dashboard, "/api/verify", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(status).toBe(200);
    expect(body.report).toMatchObject({ ok: true, drifting: [], holdViolations: [] });
    expect(body.report.checked).toBeGreaterThanOrEqual(1);
    expect((await getJson(dashboard, "/api/ledger")).body.lastVerify.report.checked).toBe(body.report.checked);
  });
});

describe.each(DIALECTS)("%s: the dashboard on rows another writer stored", (dialect) => {
  it("a ledger row whose time no date can hold ('infinity', text) is shown with at: null, not a failed panel", async () => {
    const t = await initTest(dialect);
    const dashboard = createDashboard(t.db, { intervalMs: 60_000, points: 10 });
    try {
      const user = await newUser(t.db, { balance: 3 });
      const weird = dialect === "postgresql" ? sql.raw("'infinity'") : sql.raw("'not a time'");
      await t.db.run(sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
        VALUES ('tx-weird', ${user}, 5, 'credit', ${HOSTILE}, 8, ${weird})`);
      const { status, body } = await getJson(dashboard, "/api/ledger");
      expect(status).toBe(200);
      expect(body.recent.find((r: Json) => r.id === "tx-weird")).toMatchObject({ at: null, reason: HOSTILE, amount: 5 });
      expect(body.recent.find((r: Json) => r.id !== "tx-weird").at).toMatch(/^\d{4}-\d\d-\d\dT/);
    } finally {
      dashboard.close();
      await destroyTest(t.db);
    }
  });

  it("a query-log sample whose time no date can hold: the queries panel, slow-queries --json and --report show it with no time", async () => {
    const t = await initTest(dialect);
    const dashboard = createDashboard(t.db, { intervalMs: 60_000, points: 10 });
    try {
      const weird = dialect === "postgresql" ? sql.raw("'infinity'") : sql.raw("'not a time'");
      await t.db.run(sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at) VALUES (${HOSTILE}, 700, ${dialect === "postgresql" ? sql.raw("false") : sql.raw("0")}, ${weird})`);
      const { status, body } = await getJson(dashboard, "/api/queries");
      expect(status).toBe(200);
      expect(body.recorded.find((r: Json) => r.name === HOSTILE)).toMatchObject({ count: 1, lastSeen: null });
      const report = join(mkdtempSync(join(tmpdir(), "briefdb-weird-")), "slow.html");
      const result = await cli(["slow-queries", "--db", t.url, "--json", "--report", report]);
      expect(result.code).toBe(0);
      expect(result.json?.recorded.find((r: Json) => r.name === HOSTILE)).toMatchObject({ count: 1, lastSeen: null });
      const html = readFileSync(report, "utf8");
      expect(html).toContain("last seen –");
      expect(html).not.toContain(HOSTILE);
      expect((await cli(["slow-queries", "--db", t.url])).code).toBe(0);
    } finally {
      dashboard.close();
      await destroyTest(t.db);
    }
  });
});

describe("the dashboard's safety", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await initTest("sqlite");
  });
  afterAll(() => destroyTest(t?.db));

  it("every answer (page, assets, API, errors) carries the strict Content-Security-Policy; the page has no inline script or style", async () => {
    const dashboard = createDashboard(t.db);
    try {
      for (const path of ["/", "/assets/dashboard.js", "/assets/charts.js", "/assets/dashboard.css", "/api/overview", "/api/nope", "/nope"]) {
        const response = await request(dashboard, path);
        expect(response.headers.get("content-security-policy"), path).toBe(DASHBOARD_CSP);
        expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      }
      const page = await (await request(dashboard, "/")).text();
      expect(page).not.toMatch(/<script(?![^>]*\bsrc=)/);
      expect(page).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
      const script = await (await request(dashboard, "/assets/dashboard.js")).text();
      expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    } finally {
      dashboard.close();
    }
  });

  it("with a token, the API wants Authorization: Bearer; the page and its assets hold no data and load without it", async () => {
    const dashboard = createDashboard(t.db, { token: TOKEN });
    try {
      expect((await request(dashboard, "/api/overview")).status).toBe(401);
      expect((await request(dashboard, "/api/overview", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      expect((await request(dashboard, "/api/verify", { method: "POST", headers: { "content-type": "application/json" } })).status).toBe(401);
      expect((await request(dashboard, "/api/overview", { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      // with a token, any Host may ask (it is served beyond loopback)
      expect((await request(dashboard, "/api/overview", { host: "db.example.invalid:9464", headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      expect((await request(dashboard, "/")).status).toBe(200);
    } finally {
      dashboard.close();
    }
  });

  it("without a token only loopback names are answered (DNS rebinding), and a refused dashboard says why", async () => {
    const open = createDashboard(t.db);
    const refused = createDashboard(t.db, { refuse: "the dashboard is off" });
    try {
      expect((await request(open, "/api/overview", { host: "rebound.example.invalid:9464" })).status).toBe(421);
      expect((await request(open, "/", { host: "rebound.example.invalid" })).status).toBe(421);
      for (const host of ["localhost:9464", "[::1]:9464", "127.0.0.2"]) expect((await request(open, "/api/overview", { host })).status, host).toBe(200);
      expect(await getJson(refused, "/api/overview")).toEqual({ status: 403, body: { ok: false, error: "the dashboard is off" } });
    } finally {
      open.close();
      refused.close();
    }
  });

  it("cross-origin requests are refused; nothing but verify is written to", async () => {
    const dashboard = createDashboard(t.db);
    try {
      const post = { method: "POST", headers: { "content-type": "application/json", origin: "http://evil.example.invalid" }, body: "{}" };
      expect((await request(dashboard, "/api/verify", post)).status).toBe(403);
      for (const path of ["/", "/api/overview", "/api/ledger"]) expect((await request(dashboard, path, { method: "DELETE" })).status, path).toBe(405);
    } finally {
      dashboard.close();
    }
  });

  it("hold ids are a time index: the smallest id of a millisecond sorts before every id made in it", () => {
    const at = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    const bound = holdIdAt(at);
    expect(bound).toBe(`hold_${at.toString(16).padStart(12, "0").slice(0, 8)}-${at.toString(16).padStart(12, "0").slice(8)}`);
    expect(`${bound}-7000-8000-000000000000` >= bound).toBe(true);
    expect(holdIdAt(at - 1) < bound).toBe(true);
  });
});

const serve = startServe;

describe("briefdb serve: the dashboard", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await initTest("sqlite");
  });
  afterAll(() => destroyTest(t?.db));

  it("serves the page at / and its API on loopback, keeping /healthz, /readyz and /metrics", async () => {
    const server = await serve(["--db", t.url]);
    try {
      const base = server.started.url as string;
      expect(server.started).toMatchObject({ dashboard: `${base}/`, tokenRequired: false });
      const page = await fetch(`${base}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
      expect(await page.text()).toContain('<script type="module" src="assets/dashboard.js">');
      expect((await fetch(`${base}/assets/charts.js`)).status).toBe(200);
      expect(await (await fetch(`${base}/api/overview`)).json()).toMatchObject({ ok: true, healthy: true });
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true, status: "alive" });
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      server.child.kill("SIGTERM");
      expect(await server.exited).toBe(0);
    }
    expect(server.stderr()).toBe("");
  });

  it("--token (or BRIEFDB_SERVE_TOKEN) makes the API want it, on loopback too", async () => {
    for (const [args, env] of [[["--token", TOKEN], {}], [[], { BRIEFDB_SERVE_TOKEN: TOKEN }]] as const) {
      const server = await serve(["--db", t.url, ...args], env);
      try {
        const base = server.started.url as string;
        expect(server.started.tokenRequired).toBe(true);
        expect((await fetch(`${base}/api/overview`)).status).toBe(401);
        expect((await fetch(`${base}/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
        // the sidecar's own endpoints are as they were
        expect((await fetch(`${base}/metrics`)).status).toBe(200);
      } finally {
        server.child.kill("SIGTERM");
        expect(await server.exited).toBe(0);
      }
    }
  });

  it("a token shorter than 16 characters is exit 2 before anything listens", async () => {
    const result = await cli(["serve", "--port", "0", "--db", t.url, "--token", "short", "--json"]);
    expect(result.code).toBe(2);
    expect(result.json?.error).toMatchObject({ code: "USAGE", message: "the serve token is 5 characters; it needs at least 16" });
  });
});

describe.each(DIALECTS)("%s: the dashboard when its database fails", (dialect) => {
  it("verify and the panels answer 503 with the contract's code (CLOSED on a closed database, DB_UNREACHABLE on a server not there), never a bare 500", async () => {
    const t = await initTest(dialect);
    const closed = await openDatabase(t.url);
    const dashboard = createDashboard(closed, { intervalMs: 60_000, points: 10 });
    await closed.close();
    try {
      const verify = await getJson(dashboard, "/api/verify", { method: "POST", headers: { "content-type": "application/json" } });
      expect(verify).toMatchObject({ status: 503, body: { ok: false, code: "CLOSED" } });
      expect(await getJson(dashboard, "/api/schema")).toMatchObject({ status: 503, body: { ok: false, code: "CLOSED" } });
    } finally {
      dashboard.close();
      await destroyTest(t.db);
    }
    if (dialect !== "postgresql") return;
    const gone = await openDatabase("postgres://u:pw@127.0.0.1:1/x", { timeoutMs: 1000 });
    const far = createDashboard(gone, { intervalMs: 60_000, points: 10 });
    try {
      const verify = await getJson(far, "/api/verify", { method: "POST", headers: { "content-type": "application/json" } });
      expect(verify).toMatchObject({ status: 503, body: { ok: false, code: "DB_UNREACHABLE" } });
      expect(JSON.stringify(verify.body)).not.toContain("pw@");
    } finally {
      far.close();
      await gone.close();
    }
  });
});
