import { describe, expect, it } from "vitest";
import { duration, pastMoment } from "../src/commands/parse.js";
import { durationMs } from "../src/core/duration.js";
import { parseTtl } from "../src/core/ledger/hold-input.js";

describe("one duration grammar for every flag (--wait, --ttl, --since)", () => {
  it.each([
    ["500ms", 500],
    ["90", 90_000],
    ["90s", 90_000],
    ["15m", 900_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["2w", 1_209_600_000],
    [" 30s ", 30_000],
  ])("%j is %i ms", (text, ms) => {
    expect(durationMs(text)).toBe(ms);
  });

  it.each(["", "soon", "15 m", "1.5h", "-5s", "5y", "1e3s", "99999999999999w"])("%j is not a duration", (text) => {
    expect(durationMs(text)).toBeUndefined();
  });

  it("each flag keeps its own bounds over the same words", () => {
    const now = Date.UTC(2026, 0, 10);
    expect(parseTtl("1d")).toBe(86_400);
    expect(parseTtl("90")).toBe(90);
    expect(() => parseTtl("1500ms")).toThrow(/--ttl is 1s to 24h in whole seconds/);
    expect(() => parseTtl("25h")).toThrow(/--ttl/);
    expect(pastMoment("--since", () => now)("500ms").getTime()).toBe(now - 500);
    expect(pastMoment("--since", () => now)("90").getTime()).toBe(now - 90_000);
    // eight digits that read as a past day are a date missing its dashes, not seconds
    expect(() => pastMoment("--since", () => now)("20250601")).toThrow(/reads as 20250601 seconds: for the date, write 2025-06-01/);
    expect(pastMoment("--since", () => now)("99999999").getTime()).toBe(now - 99_999_999_000); // no such day: seconds
    expect(duration("--wait")("500ms")).toBe(500);
    expect(() => duration("--wait")("2h")).toThrow(/at most 1h/);
    expect(() => duration("--wait")("0s")).toThrow(/--wait/);
  });
});
