/**
 * `serve`'s HTTP face under requests a browser would never send: every answer carries the
 * dashboard's security headers (CSP, nosniff, …) whatever the route or failure; a malformed Host or
 * request target is 400, never 500 nor a stack; a target that would rewrite the host cannot get past
 * the loopback check; a request node:http cannot parse is answered with the headers too.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DASHBOARD_CSP } from "../src/core/dashboard/handler.js";
import { startSidecar, type Sidecar } from "../src/core/health/sidecar.js";
import { DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, type TestContext } from "./support/setup.js";
import { startServe } from "./support/serve.js";

/** One raw exchange on a fresh connection: `head` is sent as it is; the whole answer, once the server closed. */
function exchange(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(head));
    let text = "";
    socket.on("data", (chunk) => (text += String(chunk)));
    socket.on("close", () => resolve(text));
    socket.on("error", reject);
  });
}

function request(method: string, target: string, host = "127.0.0.1", extra = ""): string {
  return `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;
}

function expectSecurityHeaders(answer: string, what: string): void {
  const head = answer.split("\r\n\r\n")[0]!.toLowerCase();
  expect(head, what).toContain(`content-security-policy: ${DASHBOARD_CSP.toLowerCase()}`);
  expect(head, what).toContain("x-content-type-options: nosniff");
  expect(head, what).toContain("x-frame-options: deny");
  expect(head, what).toContain("referrer-policy: no-referrer");
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]);
}

describe.each(DIALECTS)("%s: every answer serve gives", (dialect) => {
  let t: TestContext;
  let sidecar: Sidecar;
  beforeAll(async () => {
    t = await initTest(dialect);
    sidecar = await startSidecar(t.db, { port: 0, dashboard: { intervalMs: 60_000, points: 10 } });
  });
  afterAll(async () => {
    await sidecar?.close();
    await destroyTest(t?.db);
  });

  it("carries the security headers: the sidecar's routes, its 404 and 405, the dashboard, TRACE", async () => {
    const cases: Array<[string, string, number]> = [
      ["GET", "/healthz", 200],
      ["GET", "/readyz", 200],
      ["GET", "/metrics", 200],
      ["GET", "/nope", 404],
      ["POST", "/healthz", 405],
      ["DELETE", "/metrics", 405],
      ["GET", "/", 200],
      ["GET", "/api/overview", 200],
      ["TRACE", "/healthz", 405],
    ];
    for (const [method, path, status] of cases) {
      const answer = await exchange(sidecar.port, request(method, path, "127.0.0.1", method === "POST" || method === "DELETE" ? "Content-Length: 0\r\n" : ""));
      expect(statusOf(answer), `${method} ${path}`).toBe(status);
      expectSecurityHeaders(answer, `${method} ${path}`);
    }
  });

  it("a malformed Host or request target is 400 with the headers, never 500 nor a stack", async () => {
    for (const host of ["a b", "[::1", "x@127.0.0.1", "127.0.0.1/x", "127.0.0.1:99999x", "%00", ""]) {
      const answer = await exchange(sidecar.port, request("GET", "/healthz", host));
      expect(statusOf(answer), `Host: ${host}`).toBe(400);
      expectSecurityHeaders(answer, `Host: ${host}`);
      expect(answer).not.toMatch(/\bat .+\.(js|ts):\d+/);
    }
    for (const target of ["http://127.0.0.1/healthz", "*"]) {
      const answer = await exchange(sidecar.port, request("GET", target));
      expect(statusOf(answer), target).toBe(400);
      expectSecurityHeaders(answer, target);
    }
  });

  it("a target of //127.0.0.1/… under a rebound Host does not pass the loopback check (DNS rebinding)", async () => {
    for (const target of ["//127.0.0.1/api/overview", "//127.0.0.1:9464/api/ledger", "///api/overview"]) {
      const answer = await exchange(sidecar.port, request("GET", target, "rebound.example.invalid"));
      expect([404, 421], target).toContain(statusOf(answer));
      expect(answer, target).not.toContain('"ok":true');
      expectSecurityHeaders(answer, target);
    }
    expect(statusOf(await exchange(sidecar.port, request("GET", "/api/overview", "rebound.example.invalid")))).toBe(421);
  });

  it("what node:http cannot parse — a broken request line, headers past 16 kB — is answered with the headers too", async () => {
    const broken = await exchange(sidecar.port, "GARBAGE\r\n\r\n");
    expect(statusOf(broken)).toBe(400);
    expectSecurityHeaders(broken, "broken request line");
    const huge = await exchange(sidecar.port, request("GET", "/healthz", "127.0.0.1", `X-Big: ${"a".repeat(20_000)}\r\n`));
    expect(statusOf(huge)).toBe(431);
    expectSecurityHeaders(huge, "huge header");
  });
});

describe("serve's sidecar and a slowloris", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await initTest("sqlite");
  });
  afterAll(() => destroyTest(t?.db));

  it("a client that never finishes its headers is answered 408 (with the headers) and cut, not held for Node's 60 s", async () => {
    const sidecar = await startSidecar(t.db, { port: 0, headersTimeoutMs: 200 });
    try {
      const answer = await exchange(sidecar.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); // and never more
      expect(statusOf(answer)).toBe(408);
      expectSecurityHeaders(answer, "slowloris");
    } finally {
      await sidecar.close();
    }
  });
});

const serve = startServe;

/** Resolves once nothing listens on `port` any more (the server began to close). */
async function untilRefused(port: number): Promise<void> {
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(false);
      });
      socket.on("error", () => resolve(true));
    });
    if (refused) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("briefdb serve: signals while it stops", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await initTest("sqlite");
  });
  afterAll(() => destroyTest(t?.db));

  it("a second Ctrl-C while a half-sent request holds the stop ends it at once as interrupted (130), never 'outcome unknown': serve changes nothing", async () => {
    const server = await serve(["--db", t.url]);
    const slow = connect(server.port, "127.0.0.1");
    try {
      await new Promise<void>((resolve) => slow.on("connect", resolve));
      slow.on("error", () => {});
      slow.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); // and never more
      server.child.kill("SIGINT");
      await untilRefused(server.port);
      server.child.kill("SIGINT");
      expect(await server.exited).toBe(130);
      expect(server.stderr()).toBe("error: interrupted again (SIGINT) while stopping: ended at once; it was changing nothing\n");
      expect(server.stdout()).not.toContain("OUTCOME_UNKNOWN");
    } finally {
      slow.destroy();
      if (server.child.exitCode === null) server.child.kill("SIGKILL");
    }
  });
});
