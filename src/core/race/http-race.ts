/**
 * `race-test --url`: race the app's own deduct endpoint, judge by the database. n requests go out
 * truly in parallel (as ten browser tabs would), then the invariants are checked in the database
 * the app writes to, for the user the requests act as. A read-check-write endpoint over-spends or
 * loses updates here; an endpoint on atomicTokenOperation holds every invariant.
 */
import { sql } from "drizzle-orm";
import type { BriefDatabase } from "../../db/database.js";
import { assertLocalTarget } from "../../db/target.js";
import { BriefdbError } from "../../errors.js";
import { checkFilledBody, fillTemplate, parseRequestTemplate, type RequestTemplateInput } from "./http-template.js";
import type { Invariant } from "./racers.js";
import { elapsedMs, latencyHistogram, roundMs, summarizePercentiles, type LatencyBucket, type PercentileSummary } from "../stats.js";
import { getAvailableBalance } from "../ledger/holds.js";
import { applyTokenOperation, getBalance } from "../ledger/tokens.js";

export interface HttpRaceOptions extends RequestTemplateInput {
  /** The user the requests act as: their balance and ledger are what is judged. */
  readonly userId: string;
  readonly n: number;
  /** Tokens per request ({{amount}}). Default 1. */
  readonly amount?: number;
  /** Sets the user's opening balance first, through the ledger (a credit or a deduct row). */
  readonly balance?: number;
  /** Requests in flight at once; default min(n, 8). */
  readonly concurrency?: number;
  /** Each request's time limit in ms; default 10000. */
  readonly timeoutMs?: number;
  /** Stops sending; the report then says what was sent (interrupted: true). */
  readonly signal?: AbortSignal;
}

export type StatusClass = "2xx" | "3xx" | "4xx" | "5xx" | "transport";

export interface ClassLatency extends PercentileSummary {
  readonly count: number;
}

export interface HttpRaceReport {
  readonly ok: boolean;
  readonly mode: "http";
  readonly url: string;
  readonly method: string;
  /** Header names only: their values (cookies, tokens) are never reported. */
  readonly headerNames: readonly string[];
  readonly userId: string;
  readonly n: number;
  readonly amount: number;
  readonly concurrency: number;
  readonly interrupted: boolean;
  /** Requests started and requests answered (or failed) before the end or the interruption. */
  readonly sent: number;
  readonly completed: number;
  readonly successes: number;
  /** 4xx answers: the app's refusals. */
  readonly rejected: number;
  /** 5xx answers and transport errors (refused connections, timeouts). */
  readonly errors: number;
  readonly statuses: Readonly<Record<string, number>>;
  /** Up to ten of the 5xx answers and transport errors, verbatim. */
  readonly errorSamples: readonly string[];
  readonly initialBalance: number;
  readonly finalBalance: number;
  readonly ledgerRowsAdded: number;
  readonly invariants: readonly Invariant[];
  readonly durationMs: number;
  readonly throughputPerSec: number;
  readonly latencyMs: PercentileSummary;
  /** How the requests' latencies spread (the empty buckets at either end left out). */
  readonly latencyHistogram: readonly LatencyBucket[];
  readonly latencyByClass: Readonly<Partial<Record<StatusClass, ClassLatency>>>;
}

interface Answer {
  readonly statusClass: StatusClass;
  readonly status: number | null;
  readonly ms: number;
  readonly problem?: string;
}

interface LedgerTally {
  readonly rows: number;
  readonly deducts: number;
  readonly sum: number;
}

export async function runHttpRace(db: BriefDatabase, options: HttpRaceOptions): Promise<HttpRaceReport> {
  const template = parseRequestTemplate(options);
  if (!options.allowRemote) assertLocalTarget(db.target, "race-test");
  const { n, userId, amount = 1 } = options;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 8, n));
  checkFilledBody(template, { amount, user: userId, i: 0 }); // the real user, before anything changes
  const initialBalance = await setOpeningBalance(db, userId, options.balance);
  const before = await ledgerTally(db, userId);
  const startedAt = process.hrtime.bigint();
  const { answers, sent } = await fire(n, concurrency, options.signal, (i) =>
    send(fillTemplate(template, { amount, user: userId, i }), options.timeoutMs ?? 10_000, options.signal),
  );
  const durationMs = elapsedMs(startedAt);
  const after = await ledgerTally(db, userId);
  const finalBalance = await getBalance(db, userId);
  const count = (c: StatusClass) => answers.filter((a) => a.statusClass === c).length;
  const successes = count("2xx");
  const interrupted = options.signal?.aborted === true;
  const invariants = interrupted
    ? []
    : judge({ n, amount, initialBalance, finalBalance, successes, refused: count("4xx"), before, after, failures: count("5xx") + count("transport") });
  return {
    ok: !interrupted && invariants.every((i) => i.ok),
    mode: "http",
    url: template.display,
    method: template.method,
    headerNames: template.headers.map(([name]) => name),
    userId,
    n,
    amount,
    concurrency,
    interrupted,
    sent,
    completed: answers.length,
    successes,
    rejected: count("4xx"),
    errors: count("5xx") + count("transport"),
    statuses: tallyStatuses(answers),
    errorSamples: answers.flatMap((a) => (a.problem === undefined ? [] : [a.problem])).slice(0, 10),
    initialBalance,
    finalBalance,
    ledgerRowsAdded: after.rows - before.rows,
    invariants,
    durationMs: roundMs(durationMs),
    throughputPerSec: Math.round((answers.length / durationMs) * 1000 * 10) / 10,
    latencyMs: summarizePercentiles(answers.map((a) => a.ms)),
    latencyHistogram: latencyHistogram(answers.map((a) => a.ms)),
    latencyByClass: latencyByClass(answers),
  };
}

/** The user's balance made `balance` through one ledger row, so `tokens verify` still holds. */
async function setOpeningBalance(db: BriefDatabase, userId: string, balance: number | undefined): Promise<number> {
  // held tokens are not the race's to take, and a hold expiring mid-race would free some: the
  // invariants need an opening that stays what it was
  const { held } = await getAvailableBalance(db, userId);
  if (held > 0) {
    throw new BriefdbError(
      "USAGE",
      `user ${userId} has ${held} tokens held by active holds: the race's opening balance would not stay fixed; nothing changed`,
      "race a user without active holds (release them, or let them expire), or another user",
    );
  }
  const current = await getBalance(db, userId);
  if (balance === undefined || balance === current) return current;
  const operation = balance > current ? "credit" : "deduct";
  await applyTokenOperation(db, userId, operation, Math.abs(balance - current), "race-test: opening balance");
  return balance;
}

async function ledgerTally(db: BriefDatabase, userId: string): Promise<LedgerTally> {
  const [row] = await db.all<{ n: number | string; deducts: number | string | null; total: number | string | null }>(sql`
    SELECT count(*) AS n, SUM(CASE WHEN type = 'deduct' THEN 1 ELSE 0 END) AS deducts, SUM(amount) AS total
    FROM token_transactions WHERE user_id = ${userId}`);
  return { rows: Number(row?.n ?? 0), deducts: Number(row?.deducts ?? 0), sum: Number(row?.total ?? 0) };
}

/** `concurrency` senders take the next request until n are sent or the signal stops them. */
async function fire(
  n: number,
  concurrency: number,
  signal: AbortSignal | undefined,
  request: (i: number) => Promise<Answer>,
): Promise<{ answers: Answer[]; sent: number }> {
  const answers: Answer[] = [];
  let next = 0;
  const stopped = () => signal?.aborted === true;
  const sender = async () => {
    while (next < n && !stopped()) {
      const i = next++;
      const answer = await request(i);
      // a request cut short by the interruption was sent, but its answer is unknown
      if (!(stopped() && answer.statusClass === "transport")) answers.push(answer);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  return { answers, sent: next };
}

async function send(request: { url: string; init: RequestInit }, timeoutMs: number, stop: AbortSignal | undefined): Promise<Answer> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = stop === undefined ? timeout : AbortSignal.any([stop, timeout]);
  const start = process.hrtime.bigint();
  try {
    const response = await fetch(request.url, { ...request.init, signal });
    const text = await readBounded(response); // the answer, so the latency covers it
    const ms = roundMs(elapsedMs(start));
    const statusClass = `${Math.floor(response.status / 100)}xx` as StatusClass;
    const problem = response.status >= 500 ? `HTTP ${response.status}: ${text.slice(0, 200)}` : undefined;
    return { statusClass, status: response.status, ms, ...(problem === undefined ? {} : { problem }) };
  } catch (error) {
    const ms = roundMs(elapsedMs(start));
    const problem = timeout.aborted ? `timed out after ${timeoutMs} ms` : transportMessage(error);
    return { statusClass: "transport", status: null, ms, problem };
  }
}

/** Past this, an answer's body is not read on: its status is what is judged. */
export const MAX_ANSWER_BYTES = 1 << 20;

/**
 * The body's first bytes as text (for error samples), reading at most MAX_ANSWER_BYTES: an app
 * that answers with a huge or endless body must not fill this process's memory.
 */
async function readBounded(response: Response): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const kept: Uint8Array[] = [];
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (read < 1024) kept.push(value);
    read += value.byteLength;
    if (read >= MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  return Buffer.concat(kept).subarray(0, 1024).toString("utf8");
}

function transportMessage(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}: ${cause.message ?? ""}`.trim();
  return error instanceof Error ? error.message : String(error);
}

interface Tally {
  readonly n: number;
  readonly amount: number;
  readonly initialBalance: number;
  readonly finalBalance: number;
  readonly successes: number;
  readonly refused: number;
  readonly failures: number;
  readonly before: LedgerTally;
  readonly after: LedgerTally;
}

function judge(t: Tally): Invariant[] {
  const expectedSuccesses = Math.min(t.n, Math.floor(t.initialBalance / t.amount));
  const expectedFinal = t.initialBalance - t.successes * t.amount;
  const rowsAdded = t.after.rows - t.before.rows;
  const deductsAdded = t.after.deducts - t.before.deducts;
  return [
    {
      name: "successes (2xx) = min(n, floor(balance / amount))",
      ok: t.successes === expectedSuccesses,
      detail: `${t.successes} succeeded, expected ${expectedSuccesses}`,
    },
    {
      name: "final balance = opening − successes × amount ≥ 0",
      ok: t.finalBalance === expectedFinal && t.finalBalance >= 0,
      detail: `final ${t.finalBalance}, expected ${expectedFinal}`,
    },
    {
      name: "the ledger grew by exactly the successes and sums to the balance",
      ok: rowsAdded === t.successes && deductsAdded === t.successes && t.after.sum === t.finalBalance,
      detail: `${rowsAdded} rows added (${deductsAdded} deducts) for ${t.successes} successes; ledger sums to ${t.after.sum}, balance ${t.finalBalance}`,
    },
    {
      name: "no 5xx and no transport errors",
      ok: t.failures === 0,
      detail: t.failures === 0 ? "none" : `${t.failures} failed`,
    },
    {
      name: "refusals came back as 4xx",
      ok: t.refused === t.n - t.successes,
      detail: `${t.refused} of ${t.n - t.successes} refusals were 4xx`,
    },
  ];
}

function tallyStatuses(answers: readonly Answer[]): Record<string, number> {
  const statuses: Record<string, number> = {};
  for (const a of answers) {
    const key = a.status === null ? "transport" : String(a.status);
    statuses[key] = (statuses[key] ?? 0) + 1;
  }
  return statuses;
}

function latencyByClass(answers: readonly Answer[]): Partial<Record<StatusClass, ClassLatency>> {
  const byClass: Partial<Record<StatusClass, ClassLatency>> = {};
  for (const c of ["2xx", "3xx", "4xx", "5xx", "transport"] as const) {
    const ms = answers.filter((a) => a.statusClass === c).map((a) => a.ms);
    if (ms.length > 0) byClass[c] = { count: ms.length, ...summarizePercentiles(ms) };
  }
  return byClass;
}

/** For callers that check options before opening the database (the CLI). */
export function checkHttpRaceOptions(options: RequestTemplateInput): void {
  if (options.url === "") throw new BriefdbError("INVALID_URL", "--url is empty");
  parseRequestTemplate(options);
}
