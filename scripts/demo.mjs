#!/usr/bin/env node
/**
 * `npm run demo`: a short guided tour of briefdb on ./briefdb.db (the default local target),
 * running the built CLI exactly as a user would. Each step is one entry of STEPS — what it
 * shows and the briefdb arguments — so adding a step is adding a line. A step can `remember` a
 * value from its output (the hold id) that a later step's arguments name as `{name}`. Stops at the
 * first step that fails, with that step's exit code.
 */
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import pc from "picocolors";

const BIN = fileURLToPath(new URL("../bin/briefdb", import.meta.url));
/** Explicit, so that a DATABASE_URL in the environment is never the one the demo writes to. */
const TARGET = "file:./briefdb.db";

const STEPS = [
  { title: "Apply the schema", args: ["migrate"], why: "creates ./briefdb.db and applies the SQLite migrations; safe to run again" },
  {
    title: "Seed test data",
    args: ["seed", "--local"],
    why: "users with token balances, AI models, briefs, reviews and a ledger, the same every run; a re-seed replaces, never duplicates",
  },
  { title: "Check health", args: ["health"], why: "connectivity, round-trip latency, SQLite version and migration state" },
  {
    title: "Deduct tokens",
    args: ["tokens", "deduct", "seed-user-1", "25", "--reason", "demo brief", "--key", "demo-deduct-1"],
    why: "one atomic conditional UPDATE and its ledger row; the key makes a re-run a replay, never a second charge",
  },
  {
    title: "Hold tokens for an AI generation",
    args: ["tokens", "hold", "seed-user-1", "40", "--reason", "demo brief generation", "--key", "demo-hold-1"],
    why: "the cost is known only when the model finishes: reserve the estimate from the available balance first",
    remember: { hold: /hold_[0-9a-f-]{36}/ },
  },
  {
    title: "Capture the actual cost",
    args: ["tokens", "capture", "{hold}", "31"],
    why: "charge what the generation used as one deduct ledger row naming the hold; the other 9 are available again (on failure: tokens release)",
  },
  { title: "Read the ledger", args: ["tokens", "history", "seed-user-1", "--limit", "3"], why: "the user's newest ledger rows" },
  {
    title: "Race 1,000 deductions",
    args: ["race-test", "--n", "1000"],
    why: "8 worker threads, each with its own connection, at a throw-away user holding enough for half; SQLite has one writer at a time, so most deducts take well under a millisecond and a few wait their turn: the histogram shows that tail, which p99 alone hides",
  },
  {
    title: "Race the app's own endpoint",
    app: true,
    args: (/** @type {string} */ appUrl) => [
      "race-test", "--url", `${appUrl}/api/tokens/deduct`, "--user", "seed-user-2", "--header", "x-user: {{user}}",
      "--balance", "50", "--n", "100", "--concurrency", "10",
    ],
    why: "100 requests at a small app's deduct endpoint (on atomicTokenOperation), 10 at a time, judged by the database: 50 succeed, 50 are refused",
  },
  { title: "Reconcile every balance", args: ["tokens", "verify"], why: "each balance equals the sum of its ledger; holds within balances, one ledger row per capture" },
  {
    title: "Probe the canonical queries",
    args: ["slow-queries", "--probe"],
    why: "the slow-query log, then each listing query timed with its plan: every one should read through an index",
  },
];

const started = performance.now();
/** @type {Record<string, string | undefined>} */
const remembered = {};
console.log(pc.bold(`briefdb demo on ${TARGET}`));
for (const [index, step] of STEPS.entries()) {
  console.log(`\n${pc.cyan(`${index + 1}/${STEPS.length}`)} ${pc.bold(step.title)} ${pc.dim(`— ${step.why}`)}`);
  const app = step.app ? await startApp() : undefined;
  const stepArgs = typeof step.args === "function" ? step.args(app?.url ?? "") : step.args;
  const args = stepArgs.map((arg) => arg.replace(/^\{(\w+)\}$/, (_, name) => remembered[name] ?? arg));
  console.log(pc.dim(`$ briefdb ${args.map((a) => (/[\s{]/.test(a) ? `'${a}'` : a)).join(" ")}`));
  // a step that remembers reads its own output, then shows it as it came
  /** @type {import("node:child_process").StdioOptions} */
  const stdio = step.remember ? ["inherit", "pipe", "inherit"] : "inherit";
  const { status, error, stdout } = spawnSync(process.execPath, [BIN, "--db", TARGET, ...args], { stdio, encoding: "utf8" });
  if (step.remember && stdout) {
    process.stdout.write(stdout);
    for (const [name, pattern] of Object.entries(step.remember)) remembered[name] = /** @type {RegExp} */ (pattern).exec(stdout)?.[0];
  }
  if (app) await app.stop();
  if (status !== 0) {
    console.error(pc.red(`\ndemo stopped: "${step.title}" failed${error ? ` (${error.message})` : ""}`));
    process.exit(status ?? 1);
  }
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`\n${pc.green(`demo done in ${seconds} s.`)} Next: ${pc.bold("./bin/briefdb --help")}, or ${pc.bold("./bin/briefdb clear --local")} to remove the seeded rows.`);

/** The demo app (scripts/demo-app.mjs) in its own process, as the real app would be. */
async function startApp() {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./demo-app.mjs", import.meta.url)), TARGET], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /listening (\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`the demo app exited with code ${code}`)));
  });
  console.log(pc.dim(`(the demo app listens on ${url}: scripts/demo-app.mjs)`));
  return { url, stop: () => new Promise((resolve) => (child.once("exit", resolve), child.kill("SIGTERM"))) };
}
