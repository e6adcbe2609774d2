/** `briefdb tokens credit|deduct|hold|capture|release|holds|balance|history|verify`: the token ledger from the command line. */
import { Command } from "commander";
import { parseAmount } from "../core/ledger/amount.js";
import type { AvailableBalance } from "../core/ledger/holds.js";
import type { LedgerEntry, TokenOperationResult, VerifyReport } from "../core/ledger/tokens.js";
import { BriefdbError } from "../errors.js";
import { keyValues, table, type Outcome } from "../render.js";
import { action } from "./context.js";
import { holdCommands } from "./holds.js";
import { briefIdOption, idempotencyKey, userIdArgument, wholeNumber } from "./parse.js";

interface ChangeOptions {
  readonly reason?: string;
  readonly brief?: string;
  readonly key?: string;
}

export function tokensCommand(): Command {
  const tokens = new Command("tokens").description("credit, deduct, hold, read and reconcile token balances").addHelpText(
    "after",
    `
Examples:
  $ briefdb tokens deduct seed-user-1 5 --reason "brief generation" --key req-7f3a
  $ briefdb tokens credit seed-user-1 100 --reason "monthly top-up"
  $ briefdb tokens hold seed-user-1 40 --brief seed-brief-1 --json   # then: tokens capture <hold> 31, or tokens release <hold>
  $ briefdb tokens balance seed-user-1 --json
  $ briefdb tokens history seed-user-1 --limit 10
  $ briefdb tokens verify            # exit 1 when any balance drifts from its ledger`,
  );
  tokens.addCommand(changeCommand("credit"));
  tokens.addCommand(changeCommand("deduct"));
  for (const command of holdCommands()) tokens.addCommand(command);
  tokens.addCommand(
    new Command("balance")
      .description("print a user's balance, what active holds hold of it, and what is available")
      .argument("<user>", "user id", userIdArgument)
      .addHelpText("after", "\nExamples:\n  $ briefdb tokens balance seed-user-1\n  $ briefdb tokens balance seed-user-1 --json")
      .action(
        action(async (ctx, userId: string) => {
          const db = await ctx.openMigrated();
          const { getAvailableBalance } = await import("../core/ledger/holds.js");
          return balanceOutcome(await getAvailableBalance(db, userId));
        }),
      ),
  );
  tokens.addCommand(
    new Command("history")
      .description("print a user's ledger, newest first")
      .argument("<user>", "user id", userIdArgument)
      .option("--limit <n>", "rows to show", wholeNumber("--limit", 1, 1000), 20)
      .addHelpText("after", "\nExamples:\n  $ briefdb tokens history seed-user-1\n  $ briefdb tokens history seed-user-1 --limit 100 --json")
      .action(
        action(async (ctx, userId: string, options: { limit: number }) => {
          const db = await ctx.openMigrated();
          const { getHistory } = await import("../core/ledger/tokens.js");
          return historyOutcome(userId, await getHistory(db, userId, { limit: options.limit }));
        }),
      ),
  );
  tokens.addCommand(
    new Command("verify")
      .description("reconcile every balance against the sum of its ledger; exit 1 when any differs")
      .addHelpText("after", "\nExamples:\n  $ briefdb tokens verify\n  $ briefdb tokens verify --json | jq .drifting")
      .action(
        action(async (ctx) => {
          const db = await ctx.openMigrated();
          const { verifyLedger } = await import("../core/ledger/tokens.js");
          return verifyOutcome(await verifyLedger(db));
        }),
      ),
  );
  return tokens;
}

function changeCommand(operation: "credit" | "deduct"): Command {
  return new Command(operation)
    .description(
      operation === "deduct"
        ? "take tokens from a user's available balance, never below zero (one atomic statement and its ledger row)"
        : "give tokens to a user (one atomic statement and its ledger row)",
    )
    .argument("<user>", "user id", userIdArgument)
    .argument("<amount>", "a positive whole number of tokens", parseAmount)
    .option("--reason <text>", "why, kept in the ledger", `${operation} via briefdb`)
    .option("--brief <id>", "the brief this is for", briefIdOption)
    .option("--key <idempotency-key>", "apply at most once: a repeat returns the first result", idempotencyKey)
    .addHelpText(
      "after",
      `\nExamples:\n  $ briefdb tokens ${operation} seed-user-1 5 --reason "${operation === "deduct" ? "brief generation" : "monthly top-up"}"\n  $ briefdb tokens ${operation} seed-user-1 5 --key ${operation}-7f3a --json     # a repeat is a replay, not a second ${operation}`,
    )
    .action(
      action(async (ctx, userId: string, amount: number, options: ChangeOptions) => {
        const db = await ctx.openMigrated();
        const { applyTokenOperation } = await import("../core/ledger/tokens.js");
        // from here a signal is answered truly: cancelled (exit 130/143, nothing changed), or
        // applied before the cancel could stop it (the result, with a note, exit 0)
        const signal = ctx.answerSignals();
        const result = await applyTokenOperation(db, userId, operation, amount, options.reason ?? operation, {
          ...(options.brief === undefined ? {} : { briefId: options.brief }),
          ...(options.key === undefined ? {} : { idempotencyKey: options.key }),
          signal,
        });
        return changeOutcome(result, ctx.interruptedBy);
      }),
    );
}

/** `interruptedBy`: a signal came after the change had been applied (too late to stop it). */
function changeOutcome(result: TokenOperationResult, interruptedBy: string | undefined): Outcome {
  const late = interruptedBy === undefined ? undefined : `${interruptedBy} came too late: the ${result.operation} had already been applied`;
  return {
    ok: true,
    data: { ...result, createdAt: result.createdAt.toISOString(), ...(late === undefined ? {} : { interrupted: true }) },
    human: (ui) => {
      const verb = result.operation === "deduct" ? "deducted" : "credited";
      const note = result.replayed ? ui.colors.yellow(" (replayed: already applied with this key; nothing changed)") : "";
      return keyValues(ui, [
        ["user", result.userId],
        [verb, String(result.amount)],
        ["balance", ui.colors.bold(String(result.balance))],
        ["transaction", `${result.transactionId}${note}`],
        ...(late === undefined ? [] : [["note", ui.colors.yellow(late)] as const]),
      ]);
    },
  };
}

function balanceOutcome({ userId, balance, held, available }: AvailableBalance): Outcome {
  return {
    ok: true,
    data: { userId, balance, held, available },
    human: (ui) => keyValues(ui, [["user", userId], ["balance", String(balance)], ["held", String(held)], ["available", ui.colors.bold(String(available))]]),
  };
}

function historyOutcome(userId: string, entries: readonly LedgerEntry[]): Outcome {
  return {
    ok: true,
    data: { userId, entries: entries.map((e) => ({ ...e, createdAt: e.createdAt.toISOString() })) },
    human: (ui) => {
      if (entries.length === 0) return `user ${userId} has no ledger rows`;
      const rows = entries.map((e) => [
        e.createdAt.toISOString(),
        e.type,
        e.amount > 0 ? ui.colors.green(`+${e.amount}`) : ui.colors.red(String(e.amount)),
        e.balanceAfter,
        e.reason,
        e.briefId ?? "",
        e.holdId ?? "",
      ]);
      return table(ui, ["when", "type", "amount", "balance after", "reason", "brief", "hold"], rows);
    },
  };
}

function verifyOutcome(report: VerifyReport): Outcome {
  const error = report.ok ? undefined : new BriefdbError("INVARIANT_VIOLATED", verifyFailure(report));
  const legacy = report.outOfOrder.filter((user) => user.legacy);
  const broken = report.outOfOrder.filter((user) => !user.legacy);
  return {
    ok: report.ok,
    ...(error ? { error } : {}),
    data: { checked: report.checked, drifting: report.drifting, holdViolations: report.holdViolations, outOfOrder: report.outOfOrder, orderedSince: report.orderedSince },
    human: (ui) => {
      const parts: string[] = [];
      if (report.ok) {
        parts.push(
          `${ui.colors.green("ok")}: all ${report.checked} balances equal the sum of their ledger, each balance_after the running balance in history order; holds within balances, one ledger row per capture`,
        );
      }
      if (report.drifting.length > 0) {
        const rows = report.drifting.map((d) => [d.userId, d.balance, d.ledgerSum, d.difference]);
        parts.push(table(ui, ["user", "balance", "ledger sum", "difference"], rows));
      }
      if (report.holdViolations.length > 0) {
        const rows = report.holdViolations.map((v) => [v.rule, v.userId, v.holdId ?? "", v.detail]);
        parts.push(table(ui, ["hold rule", "user", "hold", "detail"], rows));
      }
      if (broken.length > 0) {
        const rows = broken.map((u) => [u.userId, u.rows, u.firstAt.toISOString(), u.lastAt.toISOString()]);
        parts.push(table(ui, ["user out of history order", "rows", "first", "last"], rows));
      }
      if (legacy.length > 0) {
        const rows = legacy.reduce((total, user) => total + user.rows, 0);
        parts.push(
          ui.colors.dim(
            `note: ${rows} ledger row(s) of ${legacy.length} user(s), stamped before this database applied migration 0003 (${report.orderedSince.toISOString()}), from which rows are stamped in apply order, are out of history order; not a violation (docs/token-ledger.md): ${names(legacy)}`,
          ),
        );
      }
      return parts.join("\n");
    },
  };
}

function names(users: readonly { readonly userId: string }[]): string {
  return `${users.slice(0, 5).map((u) => u.userId).join(", ")}${users.length > 5 ? ", …" : ""}`;
}

function verifyFailure(report: VerifyReport): string {
  const parts: string[] = [];
  if (report.drifting.length > 0) {
    parts.push(`${report.drifting.length} of ${report.checked} users' balances differ from their ledger: ${names(report.drifting)}`);
  }
  if (report.holdViolations.length > 0) {
    const rules = [...new Set(report.holdViolations.map((v) => v.rule))].join(", ");
    parts.push(`${report.holdViolations.length} hold invariant violation(s): ${rules}`);
  }
  const broken = report.outOfOrder.filter((user) => !user.legacy);
  if (broken.length > 0) parts.push(`${broken.length} user(s)' ledger rows out of history order (balance_after is not the running balance): ${names(broken)}`);
  return parts.join("; ");
}
