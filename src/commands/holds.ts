/**
 * `briefdb tokens hold|capture|release|holds`: reserve tokens before work whose cost is known only
 * afterwards, then charge the actual cost or give the reservation back.
 */
import { Command } from "commander";
import { parseAmount } from "../core/ledger/amount.js";
import { assertHoldId, parseTtl } from "../core/ledger/hold-input.js";
import type { HoldRecord, HoldResult, SettlementResult } from "../core/ledger/holds.js";
import { keyValues, table, type Outcome } from "../render.js";
import { action } from "./context.js";
import { briefIdOption, idempotencyKey, userIdArgument } from "./parse.js";

interface HoldCommandOptions {
  readonly ttl: number;
  readonly reason?: string;
  readonly brief?: string;
  readonly key?: string;
}

export function holdCommands(): Command[] {
  return [holdCommand(), captureCommand(), releaseCommand(), listCommand()];
}

function holdCommand(): Command {
  return new Command("hold")
    .description("reserve tokens until captured, released or expired; only the available balance (balance − active holds) can be held")
    .argument("<user>", "user id", userIdArgument)
    .argument("<amount>", "a positive whole number of tokens", parseAmount)
    .option("--ttl <duration>", "how long the hold counts: 90s, 15m, 2h … (1s to 24h)", parseTtl, 15 * 60)
    .option("--reason <text>", "why, kept with the hold and its capture", "hold via briefdb")
    .option("--brief <id>", "the brief this is for", briefIdOption)
    .option("--key <idempotency-key>", "place at most once: a repeat returns the first hold", idempotencyKey)
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb tokens hold seed-user-1 40 --reason "brief generation" --brief seed-brief-1 --key gen-7f3a --json
  $ briefdb tokens hold seed-user-1 40 --ttl 5m`,
    )
    .action(
      action(async (ctx, userId: string, amount: number, options: HoldCommandOptions) => {
        const db = await ctx.openMigrated();
        const { applyHold } = await import("../core/ledger/holds.js");
        // as a deduct: a signal is answered truly, cancelled (nothing changed) or too late (placed)
        const signal = ctx.answerSignals();
        const result = await applyHold(db, userId, amount, options.reason ?? "hold", {
          ttlSeconds: options.ttl,
          ...(options.brief === undefined ? {} : { briefId: options.brief }),
          ...(options.key === undefined ? {} : { idempotencyKey: options.key }),
          signal,
        });
        return holdOutcome(result, ctx.interruptedBy);
      }),
    );
}

function captureCommand(): Command {
  return new Command("capture")
    .description("charge the actual cost of a hold (at most what it holds; default all) as one deduct ledger row, and release the rest")
    .argument("<hold>", "hold id, as `tokens hold` printed it", assertHoldId)
    .argument("[amount]", "tokens to charge (default: the whole hold)", parseAmount)
    .addHelpText(
      "after",
      `
Examples:
  $ HOLD=$(briefdb tokens hold seed-user-1 40 --json | jq -r .holdId)
  $ briefdb tokens capture "$HOLD" 31       # charge 31, release the rest
  $ briefdb tokens capture "$HOLD" 31 --json   # a repeat is a replay, not a second charge (without an amount: the whole hold)`,
    )
    .action(
      action(async (ctx, holdId: string, amount: number | undefined) => {
        const db = await ctx.openMigrated();
        const { applyCapture } = await import("../core/ledger/holds.js");
        const signal = ctx.answerSignals();
        return settlementOutcome(await applyCapture(db, holdId, amount, { signal }), ctx.interruptedBy);
      }),
    );
}

function releaseCommand(): Command {
  return new Command("release")
    .description("release a hold: nothing is charged and its tokens are available again")
    .argument("<hold>", "hold id, as `tokens hold` printed it", assertHoldId)
    .addHelpText("after", '\nExamples:\n  $ HOLD=$(briefdb tokens hold seed-user-1 5 --json | jq -r .holdId)\n  $ briefdb tokens release "$HOLD"              # the generation failed\n  $ briefdb tokens release "$HOLD" --json')
    .action(
      action(async (ctx, holdId: string) => {
        const db = await ctx.openMigrated();
        const { applyRelease } = await import("../core/ledger/holds.js");
        const signal = ctx.answerSignals();
        return settlementOutcome(await applyRelease(db, holdId, { signal }), ctx.interruptedBy);
      }),
    );
}

function listCommand(): Command {
  return new Command("holds")
    .description("list a user's active holds, soonest expiry first")
    .argument("<user>", "user id", userIdArgument)
    .addHelpText("after", "\nExamples:\n  $ briefdb tokens holds seed-user-1\n  $ briefdb tokens holds seed-user-1 --json | jq '.holds[].holdId'")
    .action(
      action(async (ctx, userId: string) => {
        const db = await ctx.openMigrated();
        const { getActiveHolds, getAvailableBalance } = await import("../core/ledger/holds.js");
        const holds = await getActiveHolds(db, userId);
        const account = await getAvailableBalance(db, userId);
        return listOutcome(userId, holds, account.balance, account.available);
      }),
    );
}

/** `interruptedBy`: a signal came after the write had been applied (too late to stop it). */
function holdOutcome(result: HoldResult, interruptedBy: string | undefined): Outcome {
  return {
    ok: true,
    data: {
      ...result,
      expiresAt: result.expiresAt.toISOString(),
      createdAt: result.createdAt.toISOString(),
      ...(interruptedBy === undefined ? {} : { interrupted: true }),
    },
    human: (ui) => {
      const note =
        (result.replayed ? ui.colors.yellow(" (replayed: already placed with this key; nothing changed)") : "") +
        (interruptedBy === undefined ? "" : ui.colors.yellow(` (${interruptedBy} came too late: the hold had already been placed)`));
      return keyValues(ui, [
        ["hold", `${ui.colors.bold(result.holdId)}${note}`],
        ["user", result.userId],
        ["held", `${result.amount}${result.status === "active" ? "" : ` (${result.status})`}`],
        ["expires", result.expiresAt.toISOString()],
        ["available", `${ui.colors.bold(String(result.available))} (balance ${result.balance}, held ${result.held})`],
      ]);
    },
  };
}

function settlementOutcome(result: SettlementResult, interruptedBy: string | undefined): Outcome {
  return {
    ok: true,
    data: { ...result, settledAt: result.settledAt.toISOString(), ...(interruptedBy === undefined ? {} : { interrupted: true }) },
    human: (ui) => {
      const note =
        (result.replayed ? ui.colors.yellow(" (replayed: already settled this way; nothing changed)") : "") +
        (interruptedBy === undefined ? "" : ui.colors.yellow(` (${interruptedBy} came too late: the hold had already been settled)`));
      const pairs: Array<[string, string]> = [
        ["hold", `${result.holdId}${note}`],
        ["user", result.userId],
        ["status", result.status === "expired" ? "expired (nothing was held any more)" : result.status],
      ];
      if (result.status === "captured") {
        pairs.push(["charged", `${result.captured} of ${result.amount}`], ["released", String(result.released)]);
        pairs.push(["balance", ui.colors.bold(String(result.balance))], ["transaction", result.transactionId ?? ""]);
      } else {
        pairs.push(["released", String(result.released)]);
      }
      return keyValues(ui, pairs);
    },
  };
}

function listOutcome(userId: string, holds: readonly HoldRecord[], balance: number, available: number): Outcome {
  const rows = holds.map((h) => ({
    holdId: h.id,
    amount: h.amount,
    reason: h.reason,
    briefId: h.briefId,
    idempotencyKey: h.idempotencyKey,
    expiresAt: h.expiresAt.toISOString(),
    createdAt: h.createdAt.toISOString(),
  }));
  return {
    ok: true,
    data: { userId, balance, held: balance - available, available, holds: rows },
    human: (ui) => {
      if (holds.length === 0) return `user ${userId} has no active holds (balance ${balance}, all available)`;
      const lines = holds.map((h) => [h.id, h.amount, h.expiresAt.toISOString(), h.reason, h.briefId ?? ""]);
      return `${table(ui, ["hold", "amount", "expires", "reason", "brief"], lines)}\nbalance ${balance}, available ${available}`;
    },
  };
}
