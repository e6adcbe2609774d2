import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, createServer, type AddressInfo } from "node:net";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  atomicTokenOperation,
  captureHold,
  flushQueryLog,
  healthHandler,
  holdTokens,
  metricsHandler,
  migrate,
  monitorQuery,
  openDatabase,
  releaseHold,
  startSidecar,
  toNodeListener,
  type BriefDatabase,
} from "../src/index.js";
import { MAX_QUERY_NAMES, OTHER_QUERY_NAME } from "../src/core/health/metrics.js";
import { sql } from "drizzle-orm";
import { cli, DIALECTS, freshDatabase } from "./support/databases.js";
import { openHolder, untilWaiting } from "./support/locks.js";
import { newUser } from "./support/setup.js";
import { startServe } from "./support/serve.js";

/** Prometheus text exposition → "name{labels}" → value (comments skipped). */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

const get = (handler: (r: Request) => Promise<Response>, method = "GET") => handler(new Request("http://app.test/x", { method }));

/** Starts `briefdb serve` and resolves once it printed its one JSON object. */
async function serve(args: readonly string[]) {
  const server = await startServe(args);
  return { ...server, output: () => ({ stdout: server.stdout(), stderr: server.stderr() }) };
}

describe.each(DIALECTS)("%s: health and metrics handlers", (dialect) => {
  let url: string;
  let db: BriefDatabase;

  beforeAll(async () => {
    url = await freshDatabase(dialect);
    db = await openDatabase(url);
  });
  afterAll(() => db?.close());

  it("healthHandler: 503 with the reason before migrating, 200 with the report after; 405 for writes", async () => {
    const handler = healthHandler(db);
    const before = await get(handler);
    expect(before.status).toBe(503);
    expect(await before.json()).toMatchObject({ ok: false, healthy: false, reason: expect.stringMatching(/migration\(s\) pending/) });
    await migrate(db);
    const after = await get(handler);
    expect(after.status).toBe(200);
    expect(after.headers.get("content-type")).toBe("application/json");
    expect(await after.json()).toMatchObject({ ok: true, healthy: true, dialect, migrations: { pending: 0 } });
    expect((await get(handler, "POST")).status).toBe(405);
  });

  // on SQLite a reader in WAL mode is never blocked by a writer: nothing to hang on
  it.runIf(dialect === "postgresql")("healthHandler answers 503 when the database hangs past its deadline, instead of hanging the probe", async () => {
    await migrate(db);
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await locker.begin(async (tx) => {
        await tx`LOCK TABLE briefdb_migrations IN ACCESS EXCLUSIVE MODE`;
        const response = await get(healthHandler(db, { timeoutMs: 300 }));
        expect(response.status).toBe(503);
        expect(await response.json()).toMatchObject({ ok: false, healthy: false, reason: "the database did not answer within 300 ms" });
      });
    } finally {
      await locker.end();
    }
    expect((await get(healthHandler(db))).status).toBe(200);
  });

  // on SQLite a reader in WAL mode is never blocked by a writer: nothing to hang on
  it.runIf(dialect === "postgresql")("metricsHandler answers within its deadline when the database hangs: up 0, and scrapes do not queue", async () => {
    await migrate(db);
    // no lock timeout: without the deadline a scrape would wait as long as the lock is held
    const patient = await openDatabase(url, { lockTimeoutMs: 0 });
    const handler = metricsHandler(patient, { timeoutMs: 300 });
    expect(parseExposition(await (await get(handler)).text()).get("briefdb_up")).toBe(1);
    const locker = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await locker.begin(async (tx) => {
        await tx`LOCK TABLE briefdb_migrations IN ACCESS EXCLUSIVE MODE`;
        // three scrapes while the health read waits on the lock: each answers, none waits for the others
        const hung = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the scrapes hung with the database")), 20_000));
        const responses = await Promise.race([Promise.all([get(handler), get(handler), get(handler)]), hung]);
        for (const response of responses) {
          expect(response.status).toBe(200);
          const samples = parseExposition(await response.text());
          expect(samples.get("briefdb_up")).toBe(0);
          expect(samples.get("briefdb_healthy")).toBe(0);
        }
      });
    } finally {
      await locker.end();
    }
    // the lock is gone: the next scrape reads the database again
    try {
      for (let i = 0; i < 50; i++) {
        if (parseExposition(await (await get(handler)).text()).get("briefdb_up") === 1) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error("briefdb_up never came back to 1 after the lock was released");
    } finally {
      await patient.close();
    }
  });

  it("metricsHandler: health, migrations, recorded query samples with the 0.5 s and 1 s buckets, token outcomes", async () => {
    await migrate(db);
    await newUser(db, { id: "metrics-user", email: "metrics@example.test", name: "M", balance: 5 });
    const handler = metricsHandler(db);
    const scrape = async () => {
      const response = await get(handler);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      return parseExposition(await response.text());
    };
    const first = await scrape();
    for (let i = 0; i < 3; i++) await monitorQuery("metrics.probe", () => i, { db, warnMs: 0, slowMs: 0, logger: () => {} });
    await flushQueryLog();
    await atomicTokenOperation(db, "metrics-user", "deduct", 2, "metrics");
    await atomicTokenOperation(db, "metrics-user", "deduct", 99, "metrics");
    await atomicTokenOperation(db, "nobody", "deduct", 1, "metrics");
    const second = await scrape();
    const delta = (key: string) => (second.get(key) ?? 0) - (first.get(key) ?? 0);

    expect(second.get("briefdb_up")).toBe(1);
    expect(second.get("briefdb_healthy")).toBe(1);
    expect(second.get("briefdb_migrations_pending")).toBe(0);
    expect(second.get("briefdb_health_latency_seconds")).toBeGreaterThanOrEqual(0);
    expect(second.get('briefdb_query_duration_seconds_count{name="metrics.probe"}')).toBe(3);
    expect(second.get('briefdb_query_duration_seconds_bucket{le="0.5",name="metrics.probe"}')).toBe(3);
    expect(second.get('briefdb_query_duration_seconds_bucket{le="1",name="metrics.probe"}')).toBe(3);
    expect(delta('briefdb_token_operations_total{operation="deduct",outcome="applied"}')).toBe(1);
    expect(delta('briefdb_token_operations_total{operation="deduct",outcome="refused"}')).toBe(2);
    expect(delta('briefdb_token_refusals_total{operation="deduct",code="INSUFFICIENT_BALANCE"}')).toBe(1);
    expect(delta('briefdb_token_refusals_total{operation="deduct",code="USER_NOT_FOUND"}')).toBe(1);
    // holds, captures and releases are counted as credits and deducts are
    const held = await holdTokens(db, "metrics-user", 1, "metrics");
    const released = await holdTokens(db, "metrics-user", 1, "metrics");
    expect(held.success && released.success).toBe(true);
    if (held.success) await captureHold(db, held.data.holdId, 1);
    if (released.success) await releaseHold(db, released.data.holdId);
    await captureHold(db, "hold_00000000-0000-7000-8000-000000000000", 1);
    const third = await scrape();
    const since = (key: string) => (third.get(key) ?? 0) - (second.get(key) ?? 0);
    expect(since('briefdb_token_operations_total{operation="hold",outcome="applied"}')).toBe(2);
    expect(since('briefdb_token_operations_total{operation="capture",outcome="applied"}')).toBe(1);
    expect(since('briefdb_token_operations_total{operation="release",outcome="applied"}')).toBe(1);
    expect(since('briefdb_token_refusals_total{operation="capture",code="HOLD_NOT_FOUND"}')).toBe(1);
    // Node's default process metrics ride along
    expect(third.get("process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect([...third.keys()].some((k) => k.startsWith("nodejs_heap_size_used_bytes"))).toBe(true);
    // a third scrape counts each recorded sample once, not again
    expect((await scrape()).get('briefdb_query_duration_seconds_count{name="metrics.probe"}')).toBe(3);
    if (dialect === "postgresql") {
      expect(second.get("briefdb_pg_pool_max")).toBe(10);
      expect([...second.keys()].some((k) => k.startsWith("briefdb_pg_connections{state="))).toBe(true);
    } else {
      expect([...second.keys()].some((k) => k.startsWith("briefdb_pg_"))).toBe(false);
    }
  });

  it("metrics: past MAX_QUERY_NAMES distinct query names, new names share one (other) series", async () => {
    await migrate(db);
    const handler = metricsHandler(db);
    const extra = 30;
    for (let i = 0; i < MAX_QUERY_NAMES + extra; i++) {
      await db.run(sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at) VALUES (${`cardinality-${i}`}, 600, FALSE, ${db.time.fromEpochMs(Date.now())})`);
    }
    const samples = parseExposition(await (await get(handler)).text());
    const names = new Set([...samples.keys()].filter((k) => k.startsWith("briefdb_query_duration_seconds_count")));
    expect(names.size).toBeLessThanOrEqual(MAX_QUERY_NAMES + 1);
    expect(samples.get(`briefdb_query_duration_seconds_count{name="${OTHER_QUERY_NAME}"}`)).toBeGreaterThanOrEqual(extra);
  });

  it("a sidecar closing lets the scrape in flight finish: the scraper gets the whole exposition", async () => {
    await migrate(db);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    // the real database, with a note when the scrape's health check begins
    const watched = new Proxy(db, {
      get: (target, key) => (key === "serverVersion" ? () => (started(), target.serverVersion()) : Reflect.get(target, key)),
    });
    // a transaction holds the connection (SQLite) or the migrations table (PostgreSQL): the scrape waits on it
    const holder = db.transaction(async (tx) => {
      if (dialect === "postgresql") await tx.run(sql`LOCK TABLE briefdb_migrations IN ACCESS EXCLUSIVE MODE`);
      await held;
    });
    const sidecar = await startSidecar(watched, { port: 0 });
    const scrape = fetch(`${sidecar.url}/metrics`).then(async (r) => ({ status: r.status, text: await r.text() }));
    await inFlight;
    const closed = sidecar.close();
    release();
    await holder;
    const result = await scrape;
    await closed;
    expect(result.status).toBe(200);
    expect(parseExposition(result.text).get("briefdb_up")).toBe(1);
    await expect(fetch(`${sidecar.url}/healthz`)).rejects.toThrow(); // closed to new scrapes
  });

  it("briefdb serve: /healthz, /readyz and /metrics over real HTTP; SIGTERM stops it with exit 0", async () => {
    await migrate(db);
    const server = await serve(["--db", url]);
    expect(server.started).toMatchObject({ ok: true, url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
    const base = server.started.url as string;
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true, status: "alive" });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ healthy: true, dialect });
    const metrics = parseExposition(await (await fetch(`${base}/metrics`)).text());
    expect(metrics.get("briefdb_up")).toBe(1);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(server.output().stdout.trim().split("\n")).toHaveLength(1); // exactly one JSON object
    expect(server.output().stderr).toBe("");
  });

  it.runIf(dialect === "postgresql")(
    "briefdb serve on a hung database: SIGTERM with a scrape in flight exits 0 within the 10 s the docs promise",
    async () => {
      await migrate(db);
      // another session holds the migrations table: the scrape's read waits on it (lock timeout 15 s)
      const holder = await openHolder(dialect, url);
      try {
        await holder.run("LOCK TABLE briefdb_migrations IN ACCESS EXCLUSIVE MODE");
        const server = await serve(["--db", url]);
        const scrape = fetch(`${server.started.url}/metrics`).then(
          (response) => response.status,
          () => "cut off",
        );
        await untilWaiting(dialect, url, server.child);
        const signalled = performance.now();
        server.child.kill("SIGTERM");
        expect(await server.exited).toBe(0);
        // it took 14.6 s: the sidecar's grace, then close() waiting for the scrape's statement,
        // then the process held until the server's lock timeout let the session go
        expect(performance.now() - signalled).toBeLessThan(10_000);
        expect(await scrape).toBe(200); // answered (briefdb_up 0) before the server closed
      } finally {
        await holder.rollback();
      }
    },
  );
});

describe("briefdb serve", () => {
  it("an unmigrated database: /readyz is 503 while /healthz is 200; SIGINT stops it with exit 0", async () => {
    const url = await freshDatabase("sqlite");
    await (await openDatabase(url)).close();
    const server = await serve(["--db", url]);
    const base = server.started.url as string;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toMatch(/pending/);
    server.child.kill("SIGINT");
    expect(await server.exited).toBe(0);
  });

  it("listening beyond loopback says so on stderr (no authentication); stdout keeps its one JSON object", async () => {
    const url = await freshDatabase("sqlite");
    await (await openDatabase(url)).close();
    // bound to every interface for a moment; nothing is sent to it but a stop signal
    const server = await serve(["--db", url, "--host", "0.0.0.0"]);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(server.output().stdout.trim().split("\n")).toHaveLength(1);
    expect(server.output().stderr).toMatch(/^warning: listening on 0\.0\.0\.0, not loopback: /);
    // without a token the dashboard is off there, and the one warning line says so
    expect(server.started).toMatchObject({ dashboard: null, tokenRequired: false });
    expect(server.output().stderr).toMatch(/; the dashboard at \/ is off \(give --token or BRIEFDB_SERVE_TOKEN to serve it\)\n$/);
    expect(server.output().stderr.trim().split("\n")).toHaveLength(1);
  });

  it("a port in use is one line and exit 2", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    const url = await freshDatabase("sqlite");
    await (await openDatabase(url)).close();
    const result = await cli(["serve", "--port", String(port), "--db", url]);
    blocker.close();
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`error: port ${port} on 127.0.0.1 is in use (hint: choose another --port, or stop what listens there)\n`);
  });

  it("--host 127.1 is loopback (127.0.0.1 written short): no warning", async () => {
    const url = await freshDatabase("sqlite");
    await (await openDatabase(url)).close();
    const server = await serve(["--db", url, "--host", "127.1"]);
    expect(server.started.url).toMatch(/^http:\/\/127\.1:\d+$/);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(server.output().stderr).toBe("");
  });

  it.each([["--port", "70000"], ["--port", "http"], ["--host", ""], ["--host", " "], ["--host", "a b"], ["--host", "http://x/"]])("bad %s %j is exit 2", async (...args) => {
    const result = await cli(["serve", ...args, "--json"]);
    expect(result.code).toBe(2);
    expect(result.json?.error.code).toBe("USAGE");
  });
});

describe("toNodeListener: web-standard handlers in node:http and Express", () => {
  /** A node:http server on loopback running `listener` after `before` (middleware, as Express runs it). */
  async function listening(
    listener: (request: IncomingMessage, response: ServerResponse) => void,
    before?: (request: IncomingMessage) => Promise<void>,
  ): Promise<{ url: string; close: () => Promise<void> }> {
    const server = createHttpServer((request, response) => void (before ? before(request) : Promise.resolve()).then(() => listener(request, response)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  /** What express.json() does: reads the whole stream, then puts the parsed body on request.body. */
  async function jsonBodyParser(request: IncomingMessage): Promise<void> {
    let text = "";
    for await (const chunk of request) text += String(chunk);
    (request as IncomingMessage & { body?: unknown }).body = JSON.parse(text);
  }

  /** One raw HTTP/1.1 exchange, so that methods fetch() refuses to send (TRACE) can be sent. */
  async function rawRequest(url: string, method: string): Promise<string> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.end(`${method} /healthz HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`));
      let text = "";
      socket.on("data", (chunk) => (text += String(chunk)));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
  }

  it("TRACE (which a web Request cannot carry) is 405, not 500", async () => {
    const server = await listening(toNodeListener(healthHandler(undefined as unknown as BriefDatabase)));
    try {
      expect(await rawRequest(server.url, "TRACE")).toMatch(/^HTTP\/1\.1 405 /);
    } finally {
      await server.close();
    }
  });

  it("every Set-Cookie of the response reaches the client, each apart", async () => {
    const handler = async () => {
      const headers = new Headers();
      headers.append("set-cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/");
      headers.append("set-cookie", "b=2; Path=/");
      return new Response("ok", { headers });
    };
    const server = await listening(toNodeListener(handler));
    try {
      const response = await fetch(server.url);
      expect(response.headers.getSetCookie()).toEqual(["a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/", "b=2; Path=/"]);
    } finally {
      await server.close();
    }
  });

  it("behind a body parser (express.json()) the handler reads the body the parser read", async () => {
    const handler = async (request: Request) => Response.json({ got: await request.json() });
    const server = await listening(toNodeListener(handler), jsonBodyParser);
    try {
      const response = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body: '{"amount":5}' });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ got: { amount: 5 } });
    } finally {
      await server.close();
    }
  });

  it("a handler that throws answers 500 'internal error', never the error's own text", async () => {
    const server = await listening(toNodeListener(async () => { throw new Error("postgres://me:s3cret@db.example.invalid/x failed"); }));
    try {
      const response = await fetch(server.url);
      expect(response.status).toBe(500);
      expect(await response.text()).toBe("internal error");
    } finally {
      await server.close();
    }
  });
});
