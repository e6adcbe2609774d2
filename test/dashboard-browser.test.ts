/**
 * The dashboard in a real browser: Debian's chromium (/usr/bin/chromium) driven by playwright-core,
 * nothing downloaded. The page loads with no console error (a CSP violation is one), each panel
 * shows the figures its JSON endpoint gives, a hostile stored string stays text, the page works
 * from the keyboard, and the token is asked for when serve has one. Screenshots of each page go to
 * test-artifacts/ (gitignored). With CI=true the browser must be there: these never skip.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { atomicTokenOperation, captureHold, holdTokens, releaseHold, startSidecar, type Sidecar } from "../src/index.js";
import { sql } from "drizzle-orm";
import { cli, DIALECTS } from "./support/databases.js";
import { destroyTest, initTest, newUser, type TestContext } from "./support/setup.js";
import { startServe } from "./support/serve.js";

export const CHROMIUM = process.env.BRIEFDB_CHROMIUM ?? "/usr/bin/chromium";
export const ARTIFACTS = resolve(import.meta.dirname, "../test-artifacts");
const RUN = existsSync(CHROMIUM) || process.env.CI === "true";

const HOSTILE = "<img src=x onerror=alert(1)>";
/** Shown raw, U+202E would show the rest reversed: "invoice-" then "pdf.exe" read as "exe.fdp". */
const REVERSING = "invoice-\u202Eexe.fdp";
const TOKEN = "browser-test-token-0123456789";

type Json = Record<string, any>;

/** A page that records console errors, page errors, dialogs (an alert would be one) and CSP violations. */
export async function watchedPage(browser: Browser, colorScheme: "light" | "dark" = "light") {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme });
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  // an init script is the browser's own, not the page's: CSP does not apply to it
  await page.addInitScript(
    'document.addEventListener("securitypolicyviolation", (e) => console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI))',
  );
  return { page, problems };
}

async function loaded(page: Page): Promise<void> {
  for (const panel of ["overview", "ledger", "queries", "schema"]) await page.waitForSelector(`#${panel}[data-loaded="true"]`, { timeout: 30_000 });
}

async function api(base: string, panel: string, headers: Record<string, string> = {}): Promise<Json> {
  return (await (await fetch(`${base}/api/${panel}`, { headers })).json()) as Json;
}

async function serve(args: readonly string[]) {
  const server = await startServe(args);
  return { base: server.base, stop: async () => expect(await server.stop()).toBe(0) };
}

/** A little of everything the panels show: users (one named by markup), each operation, a refusal, slow samples. */
async function activity(t: TestContext): Promise<void> {
  const user = await newUser(t.db, { id: HOSTILE, balance: 500 });
  const other = await newUser(t.db, { id: "browser-user", balance: 300 });
  expect((await atomicTokenOperation(t.db, user, "deduct", 12, HOSTILE)).success).toBe(true);
  expect((await atomicTokenOperation(t.db, other, "deduct", 5000, "too much")).success).toBe(false);
  expect((await atomicTokenOperation(t.db, other, "deduct", 1, REVERSING)).success).toBe(true);
  const kept = await holdTokens(t.db, user, 40, "generation");
  const captured = await holdTokens(t.db, other, 30, "generation");
  const released = await holdTokens(t.db, other, 10, "generation");
  if (!kept.success || !captured.success || !released.success) throw new Error("a hold was refused");
  expect((await captureHold(t.db, captured.data.holdId, 22)).success).toBe(true);
  expect((await releaseHold(t.db, released.data.holdId)).success).toBe(true);
  const now = Date.now();
  for (const [name, ms] of [["briefs.feed", 620], ["briefs.feed", 540], ["briefs.feed", 2400], [HOSTILE, 800]] as const) {
    await t.db.run(sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at) VALUES (${name}, ${ms}, FALSE, ${t.db.time.fromEpochMs(now)})`);
  }
}

/** Each [data-k] figure on the page is the value its endpoint gives (data-v holds it unformatted). */
async function expectFiguresMatch(page: Page, base: string, headers: Record<string, string> = {}): Promise<void> {
  const figures = await page.$$eval("[data-k]", (nodes) => nodes.map((n) => ({ key: n.getAttribute("data-k")!, value: n.getAttribute("data-v"), text: n.textContent })));
  const panels: Record<string, Json> = { overview: await api(base, "overview", headers), ledger: await api(base, "ledger", headers) };
  const stable = ["overview.target", "overview.role", "overview.migrations.applied", "overview.migrations.pending", "overview.healthy", "ledger.activeHolds.count", "ledger.activeHolds.tokens"];
  for (const key of stable) {
    const [panel, ...path] = key.split(".");
    const expected = path.reduce<any>((value, part) => value?.[part], panels[panel!]);
    const shown = figures.filter((f) => f.key === key);
    expect(shown.length, key).toBeGreaterThan(0);
    for (const figure of shown) expect(figure.value, key).toBe(String(expected));
  }
  const holds = figures.find((f) => f.key === "ledger.activeHolds.tokens")!;
  expect(holds.text).toBe(Number(panels.ledger!.activeHolds.tokens).toLocaleString("en-US"));
}

describe.runIf(RUN)("the dashboard in headless Chromium", () => {
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });
  afterAll(() => browser?.close());

  describe.each(DIALECTS)("%s: briefdb serve", (dialect) => {
    let t: TestContext;
    beforeAll(async () => {
      t = await initTest(dialect);
      await activity(t);
    });
    afterAll(() => destroyTest(t?.db));

    it("loads with no console error; each panel shows its endpoint's figures; a hostile user id and reason stay text", async () => {
      const server = await serve(["--db", t.url]);
      const { page, problems } = await watchedPage(browser);
      try {
        await page.goto(`${server.base}/`);
        await loaded(page);
        await expectFiguresMatch(page, server.base);
        const recent = await page.$$eval("#recent tbody tr", (rows) => rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent)));
        expect(recent.some((cells) => cells[1] === HOSTILE && cells[4] === HOSTILE)).toBe(true);
        // a character that would reorder the text around it shows as its escape
        expect(recent.some((cells) => cells[4] === "invoice-\\u202eexe.fdp")).toBe(true);
        const slowNames = await page.$$eval("#slow tbody tr td:first-child", (cells) => cells.map((c) => c.textContent));
        expect(slowNames).toEqual(expect.arrayContaining([HOSTILE, "briefs.feed"]));
        expect(await page.locator("img").count()).toBe(0);
        const queries = await api(server.base, "queries");
        expect(await page.locator("#probes details").count()).toBe(queries.probes.length);
        expect(await page.locator("#probes .badge.good").count()).toBe(queries.probes.filter((p: Json) => p.usesIndex).length);
        // the histogram of briefs.feed: its bars carry the counts the endpoint gives
        const feed = queries.recorded.find((r: Json) => r.name === "briefs.feed");
        const bars = await page.$$eval("#slow tbody tr", (rows) =>
          rows.filter((r) => r.querySelector("td")?.textContent === "briefs.feed").flatMap((r) => [...r.querySelectorAll("rect.bar")].map((b) => Number(b.getAttribute("data-count")))),
        );
        expect(bars.reduce((a, b) => a + b, 0)).toBe(feed.count);
        const schema = await api(server.base, "schema");
        expect(await page.locator("#migrations tbody tr").count()).toBe(schema.migrations.length);
        await page.screenshot({ path: join(ARTIFACTS, `dashboard-${dialect}-light.png`), fullPage: true });
        expect(problems).toEqual([]);
      } finally {
        await page.close();
        await server.stop();
      }
    });

    it("works from the keyboard: Tab reaches the panels' links and the verify button; Enter runs tokens verify", async () => {
      const server = await serve(["--db", t.url]);
      const { page, problems } = await watchedPage(browser, "dark");
      try {
        await page.goto(`${server.base}/`);
        await loaded(page);
        const reached: string[] = [];
        for (let i = 0; i < 40 && !reached.includes("verify"); i++) {
          await page.keyboard.press("Tab");
          reached.push(await page.evaluate<string>('document.activeElement?.id || document.activeElement?.getAttribute("href") || ""'));
        }
        expect(reached).toEqual(expect.arrayContaining(["#overview", "#ledger", "#queries", "#schema", "verify"]));
        await page.keyboard.press("Enter");
        await page.waitForSelector("#verify-result.good", { timeout: 30_000 });
        const ledger = await api(server.base, "ledger");
        expect(ledger.lastVerify.report.ok).toBe(true);
        expect(await page.getAttribute("#verify-result", "data-v")).toBe(String(ledger.lastVerify.report.checked));
        await page.screenshot({ path: join(ARTIFACTS, `dashboard-${dialect}-dark.png`), fullPage: true });
        expect(problems).toEqual([]);
      } finally {
        await page.close();
        await server.stop();
      }
    });
  });

  it("with --token the page asks for it, and shows the panels once given", async () => {
    const t = await initTest("sqlite");
    const server = await serve(["--db", t.url, "--token", TOKEN]);
    const { page, problems } = await watchedPage(browser);
    try {
      await page.goto(`${server.base}/`);
      await page.waitForSelector("#auth:not([hidden])");
      expect(await page.textContent("#status")).toBe("token required");
      await page.fill("#token", TOKEN);
      await page.keyboard.press("Enter");
      await loaded(page);
      await expectFiguresMatch(page, server.base, { authorization: `Bearer ${TOKEN}` });
      // the 401s before the token was given are the browser's own network log, not the page's errors
      expect(problems.filter((p) => !/401 \(Unauthorized\)/.test(p))).toEqual([]);
    } finally {
      await page.close();
      await server.stop();
      await destroyTest(t.db);
    }
  });

  it("a #token= in the address is always removed from it: at first, with a token stored, and pasted into an open page", async () => {
    const t = await initTest("sqlite");
    const server = await serve(["--db", t.url, "--token", TOKEN]);
    const { page, problems } = await watchedPage(browser);
    try {
      await page.goto(`${server.base}/#token=${TOKEN}`);
      await loaded(page);
      expect(page.url()).toBe(`${server.base}/`);
      // a new load with the token already stored in the tab: before, the fragment stayed in the address
      await page.goto(`${server.base}/?again#token=${TOKEN}`);
      await loaded(page);
      expect(page.url()).toBe(`${server.base}/?again`);
      // the same document, its fragment changed (pasted into the address bar)
      await page.evaluate(`location.hash = "#token=${TOKEN}"`);
      await page.waitForFunction('!location.href.includes("token")'); // TOKEN has "token" in it too
      expect(await page.evaluate<string | null>('sessionStorage.getItem("briefdb-token")')).toBe(TOKEN);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      await server.stop();
      await destroyTest(t.db);
    }
  });

  it("mounted in the app's own process it also shows refusals, releases and operation latency (the README's picture)", async () => {
    const t = await initTest("sqlite");
    let sidecar: Sidecar | undefined;
    const { page, problems } = await watchedPage(browser);
    try {
      sidecar = await startSidecar(t.db, { port: 0, dashboard: { intervalMs: 250, points: 60 } });
      const users = [];
      for (let i = 0; i < 8; i++) users.push(await newUser(t.db, { id: `app-user-${i}`, balance: 400 }));
      await page.goto(`${sidecar.url}/`);
      // a few seconds of traffic: concurrent deducts (batched), holds and captures, some refused
      for (let round = 0; round < 32; round++) {
        await Promise.all(
          users.map(async (user, i) => {
            await atomicTokenOperation(t.db, user, "deduct", 1 + ((round + i) % 7), "brief generation");
            if ((round + i) % 5 === 0) await atomicTokenOperation(t.db, user, "deduct", 100_000, "too much");
            if ((round + i) % 4 === 0) {
              const hold = await holdTokens(t.db, user, 5, "generation");
              if (hold.success && round % 2 === 0) await captureHold(t.db, hold.data.holdId, 3);
              else if (hold.success) await releaseHold(t.db, hold.data.holdId);
            }
          }),
        );
        await new Promise((done) => setTimeout(done, 100));
      }
      const now = Date.now();
      for (const [name, ms] of [["briefs.feed", 620], ["briefs.feed", 540], ["briefs.feed", 700], ["briefs.feed", 2400], ["reviews.byBrief", 800], ["reviews.byBrief", 520]] as const) {
        await t.db.run(sql`INSERT INTO query_log (name, duration_ms, failed, recorded_at) VALUES (${name}, ${ms}, 0, ${now})`);
      }
      await page.reload();
      await loaded(page);
      await page.waitForSelector("#refusals-chart svg");
      await page.waitForSelector("#op-latency svg rect.bar");
      const ledger = await api(sidecar.url, "ledger");
      expect(Object.keys(ledger.totals.refused)).toEqual(["INSUFFICIENT_BALANCE"]);
      const legend = await page.textContent("#refusals-legend");
      expect(legend).toBe(`INSUFFICIENT_BALANCE: ${ledger.totals.refused.INSUFFICIENT_BALANCE}`);
      const bars = await page.$$eval("#op-latency rect.bar", (rects) => rects.reduce((sum, r) => sum + Number(r.getAttribute("data-count")), 0));
      const counted = ledger.process.latency.reduce((sum: number, l: Json) => sum + l.counts.reduce((a: number, b: number) => a + b, 0), 0);
      expect(bars).toBe(counted);
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-app.png") });
      await page.emulateMedia({ colorScheme: "dark" });
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-app-dark.png") });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      await sidecar?.close();
      await destroyTest(t.db);
    }
  });

  it("the race-test and slow-queries report files open offline with no console error and show their histogram", async () => {
    const t = await initTest("sqlite");
    try {
      await activity(t);
      for (const [name, command] of [["race", ["race-test", "--n", "80"]], ["slow-queries", ["slow-queries", "--probe", "--runs", "2"]]] as const) {
        const file = join(ARTIFACTS, `report-${name}.html`);
        const result = await cli([...command, "--db", t.url, "--report", file, "--json"]);
        expect(result.code, result.stderr).toBe(0);
        const { page, problems } = await watchedPage(browser);
        try {
          // nothing but the file itself may be loaded
          const requests: string[] = [];
          page.on("request", (r) => requests.push(r.url()));
          await page.goto(`file://${file}`);
          const bars = await page.$$eval("svg.histogram rect.bar", (rects) => rects.map((r) => Number(r.getAttribute("data-count"))));
          expect(bars.length).toBeGreaterThan(0);
          const expected = name === "race" ? 80 : result.json!.recorded.reduce((sum: number, r: Json) => sum + r.count, 0);
          expect(bars.reduce((a, b) => a + b, 0)).toBe(expected);
          expect(await page.locator("svg.histogram rect.bar").first().isVisible()).toBe(true);
          if (name === "slow-queries") expect(await page.locator("h3", { hasText: HOSTILE }).count()).toBe(1);
          expect(await page.locator("img").count()).toBe(0);
          expect(requests).toEqual([`file://${file}`]);
          await page.screenshot({ path: join(ARTIFACTS, `report-${name}.png`), fullPage: true });
          expect(problems).toEqual([]);
        } finally {
          await page.close();
        }
      }
    } finally {
      await destroyTest(t.db);
    }
  });
});
