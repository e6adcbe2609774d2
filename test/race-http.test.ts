import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBalance, holdTokens, verifyLedger, type BriefDatabase } from "../src/index.js";
import { startDeductApp, type DeductApp } from "./support/deduct-app.js";
import { cli, DIALECTS, spawnCli } from "./support/databases.js";
import { destroyTest, initTest, newUser } from "./support/setup.js";

describe.each(DIALECTS)("%s: race-test --url races the app's own endpoint", (dialect) => {
  let url: string;
  let db: BriefDatabase;
  let app: DeductApp;

  beforeAll(async () => {
    ({ url, db } = await initTest(dialect));
    app = await startDeductApp(db); // the app holds its own connection, as a real one would
  });
  afterAll(async () => {
    await app?.close();
    await destroyTest(db);
  });

  const race = (path: string, user: string, ...extra: string[]) =>
    cli(["race-test", "--url", `${app.url}${path}`, "--user", user, "--header", "x-user: {{user}}", "--db", url, "--json", ...extra]);

  it("an endpoint on atomicTokenOperation holds every invariant: exit 0", async () => {
    const user = await newUser(db);
    const result = await race("/atomic/deduct", user, "--balance", "20", "--n", "40", "--concurrency", "8");
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({
      ok: true,
      mode: "http",
      n: 40,
      sent: 40,
      successes: 20,
      rejected: 20,
      errors: 0,
      initialBalance: 20,
      finalBalance: 0,
      ledgerRowsAdded: 20,
      statuses: { "200": 20, "409": 20 },
      headerNames: ["x-user", "content-type"],
    });
    expect(result.json!.invariants).toHaveLength(5);
    expect(result.json!.invariants.every((i: { ok: boolean }) => i.ok)).toBe(true);
    expect(result.json!.latencyByClass["2xx"].count).toBe(20);
    expect(result.json!.latencyByClass["4xx"].count).toBe(20);
    expect(await getBalance(db, user)).toBe(0);
    expect((await verifyLedger(db)).drifting.map((d) => d.userId)).not.toContain(user); // the naive race's user drifts, this one not
  });

  it("a user with an active hold is refused before any request (exit 2): a hold expiring mid-race would move the opening balance", async () => {
    const user = await newUser(db, { balance: 30 });
    expect((await holdTokens(db, user, 10, "in flight")).success).toBe(true);
    const sentBefore = app.received.get("/atomic/deduct") ?? 0;
    const result = await race("/atomic/deduct", user, "--balance", "20", "--n", "5");
    expect(result.code, result.stderr).toBe(2);
    expect(result.json?.error.message).toMatch(/has 10 tokens held by active holds.*nothing changed/);
    expect(app.received.get("/atomic/deduct") ?? 0).toBe(sentBefore);
    expect(await getBalance(db, user)).toBe(30);
  });

  it("the read-check-write endpoint is caught: exit 1, INVARIANT_VIOLATED, the table says which", async () => {
    const user = await newUser(db);
    const result = await race("/naive/deduct", user, "--balance", "20", "--n", "80", "--concurrency", "8");
    expect(result.code, result.stderr).toBe(1);
    expect(result.json).toMatchObject({ ok: false, error: { code: "INVARIANT_VIOLATED" } });
    const broken = result.json!.invariants.filter((i: { ok: boolean }) => !i.ok).map((i: { name: string }) => i.name);
    expect(broken).toContain("successes (2xx) = min(n, floor(balance / amount))");
    expect(result.stderr).toMatch(/^error: race-test POST http:\/\/127\.0\.0\.1:\d+\/naive\/deduct: \d invariant\(s\) broken/);
  });

  it("5xx answers break 'no 5xx and no transport errors'", async () => {
    const user = await newUser(db, { balance: 5 });
    const result = await race("/broken/deduct", user, "--n", "4");
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ errors: 4, successes: 0, initialBalance: 5, finalBalance: 5, statuses: { "500": 4 } });
    const failed = result.json!.invariants.filter((i: { ok: boolean }) => !i.ok).map((i: { name: string }) => i.name);
    expect(failed).toEqual(["successes (2xx) = min(n, floor(balance / amount))", "no 5xx and no transport errors", "refusals came back as 4xx"]);
    expect(result.json!.errorSamples[0]).toMatch(/^HTTP 500/);
  });

  it("--balance lowers a balance through a deduct row, and --amount and {{i}} fill the template", async () => {
    const user = await newUser(db, { balance: 100 });
    const result = await race("/atomic/deduct?request=r-{{i}}", user, "--balance", "10", "--amount", "3", "--n", "5", "--body", '{"amount":{{amount}},"who":"{{user}}"}');
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ initialBalance: 10, successes: 3, rejected: 2, finalBalance: 1 });
    expect((await verifyLedger(db)).drifting.map((d) => d.userId)).not.toContain(user); // the naive race's user drifts, this one not
  });

  it("an unknown user is exit 3 USER_NOT_FOUND before any request", async () => {
    const before = app.received.get("/atomic/deduct") ?? 0;
    const result = await race("/atomic/deduct", "nobody-here", "--n", "3");
    expect(result.code).toBe(3);
    expect(result.json?.error.code).toBe("USER_NOT_FOUND");
    expect(app.received.get("/atomic/deduct") ?? 0).toBe(before);
  });

  it("a body that is not JSON once the user is filled in is exit 2 before any request or change", async () => {
    const user = await newUser(db, { id: 'quote"user', email: "q@example.test", name: "q", balance: 7 });
    const before = app.received.get("/atomic/deduct") ?? 0;
    const result = await race("/atomic/deduct", user, "--balance", "20", "--n", "3", "--body", '{"amount":{{amount}},"who":"{{user}}"}');
    expect(result.code, result.stderr).toBe(2);
    expect(result.json?.error.code).toBe("USAGE");
    expect(result.json?.error.message).toMatch(/^--body is not JSON once filled in/);
    expect(app.received.get("/atomic/deduct") ?? 0).toBe(before);
    expect(await getBalance(db, user)).toBe(7); // --balance was not applied either
  });

  it("a user and password in the URL go as Basic auth (fetch refuses them in the URL), never shown", async () => {
    const user = await newUser(db);
    const withCredentials = app.url.replace("http://", "http://app:s3cret@");
    const result = await cli(["race-test", "--url", `${withCredentials}/auth/deduct`, "--user", user, "--header", "x-user: {{user}}", "--balance", "3", "--n", "5", "--db", url, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ successes: 3, rejected: 2, statuses: { "200": 3, "409": 2 } });
    expect(result.json?.url).toBe(`${app.url.replace("http://", "http://app:***@")}/auth/deduct`);
    expect(result.stdout + result.stderr).not.toContain("s3cret");
  });

  it("an answer with an endless body is judged by its status, not read forever", async () => {
    const user = await newUser(db);
    const result = await race("/endless/deduct", user, "--balance", "2", "--n", "4", "--timeout", "600000");
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ successes: 2, rejected: 2, errors: 0, finalBalance: 0 });
  });

  if (dialect === "sqlite") {
    it("SIGTERM stops sending as Ctrl-C does: exit 143 (SIGTERM's), the requests cut short sent but not answered", async () => {
      const user = await newUser(db, { balance: 10 });
      const before = app.received.get("/hang") ?? 0;
      const child = spawnCli(["race-test", "--url", `${app.url}/hang`, "--user", user, "--n", "50", "--concurrency", "4", "--db", url, "--json"]);
      let stdout = "";
      child.stdout.on("data", (chunk) => (stdout += String(chunk)));
      while ((app.received.get("/hang") ?? 0) < before + 4) await new Promise((resolve) => setTimeout(resolve, 20));
      child.kill("SIGTERM");
      const code = await new Promise((resolve) => child.on("exit", resolve));
      expect(code).toBe(143);
      expect(JSON.parse(stdout)).toMatchObject({ ok: false, interrupted: true, sent: 4, completed: 0, statuses: {}, error: { code: "CANCELLED" } });
      expect(await getBalance(db, user)).toBe(10);
    });

    it("Ctrl-C stops sending: exit 130 with a report of what was sent", async () => {
      const user = await newUser(db, { balance: 10 });
      const before = app.received.get("/hang") ?? 0;
      const child = spawnCli(["race-test", "--url", `${app.url}/hang`, "--user", user, "--n", "50", "--concurrency", "4", "--db", url, "--json"]);
      let stdout = "";
      child.stdout.on("data", (chunk) => (stdout += String(chunk)));
      while ((app.received.get("/hang") ?? 0) < before + 4) await new Promise((resolve) => setTimeout(resolve, 20));
      child.kill("SIGINT");
      const code = await new Promise((resolve) => child.on("exit", resolve));
      expect(code).toBe(130);
      const report = JSON.parse(stdout);
      expect(report).toMatchObject({ ok: false, interrupted: true, sent: 4, error: { code: "CANCELLED" }, invariants: [] });
    });
  }
});

describe("race-test --url refusals (before any request or connection)", () => {
  const refuse = (...args: string[]) => cli(["race-test", "--user", "u", "--db", "file:/nonexistent/dir/x.db", "--json", ...args]);

  it("a URL that is not loopback: exit 3 NOT_LOCAL, the password redacted", async () => {
    const result = await refuse("--url", "http://admin:hunter2@app.example.invalid/api/deduct");
    expect(result.code).toBe(3);
    expect(result.json?.error.code).toBe("NOT_LOCAL");
    expect(result.json?.error.message).toContain("http://admin:***@app.example.invalid/api/deduct");
    expect(result.stdout + result.stderr).not.toContain("hunter2");
  });

  it("a secret in the URL's query is not printed: each query value shown as ***, placeholders kept", async () => {
    const result = await refuse("--url", "http://app.example.invalid/api/deduct?tok=s3cr3t-t0ken&user={{user}}");
    expect(result.code).toBe(3);
    expect(result.json?.error.message).toContain("http://app.example.invalid/api/deduct?tok=***&user={{user}}");
    expect(result.stdout + result.stderr).not.toContain("s3cr3t-t0ken");
  });

  it.each(["http://localhost.:57101/deduct", "http://app.localhost:57101/deduct", "http://127.0.0.1.nip.invalid/deduct"])(
    "%s is not loopback for certain (a name other than localhost may go to DNS): exit 3 NOT_LOCAL",
    async (url) => {
      const result = await refuse("--url", url);
      expect(result.code, result.stderr).toBe(3);
      expect(result.json?.error.code).toBe("NOT_LOCAL");
    },
  );

  it.each([
    [["--url", "not a url"], "INVALID_URL"],
    [["--url", "ftp://127.0.0.1/deduct"], "INVALID_URL"],
    [["--url", "http://{{user}}.localhost/deduct"], "INVALID_URL"],
    // without "//" the placeholder still lands in the host: a user ".example.invalid" would aim off loopback
    [["--url", "http:127.0.0.1{{user}}/deduct"], "INVALID_URL"],
    [["--url", "http://127.0.0.1/deduct", "--body", '{"amount":{{amount}}'], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--body", '{"amount":{{amount}},"user":{{user}}}'], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--header", "no colon here"], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--header", "Bad Name: x"], "USAGE"],
    // "…" is no byte: fetch would fail every request as a transport error
    [["--url", "http://127.0.0.1/deduct", "--header", "Cookie: session=…"], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--body", '{"tokens":5}'], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--body", '{"amount":{{amout}}}'], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--method", "GET"], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--method", "FETCH"], "USAGE"],
    [["--url", "http://127.0.0.1/deduct", "--keep"], "USAGE"],
    [["--header", "x-user: u"], "USAGE"],
  ])("%j is exit 2 %s", async (args, code) => {
    const result = await refuse(...args);
    expect(result.code, result.stderr).toBe(2);
    expect(result.json?.error.code).toBe(code);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("--url without --user is exit 2", async () => {
    const result = await cli(["race-test", "--url", "http://127.0.0.1:9/deduct", "--db", "file:/nonexistent/x.db", "--json"]);
    expect(result.code).toBe(2);
    expect(result.json?.error.message).toMatch(/--user/);
  });
});
