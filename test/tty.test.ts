import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { cli, freshDatabase } from "./support/databases.js";
import { runOnTty } from "./support/tty.js";

const ESC = "\u001b[";

/** The CLI on a pseudo-terminal, colour allowed unless `env` says otherwise. */
async function onTty(args: string[], env: Record<string, string> = {}): Promise<string> {
  return (await runOnTty(args, [], { NO_COLOR: undefined, CI: undefined, TERM: "xterm-256color", ...env })).output;
}

describe("terminal output", () => {
  it("colours human output on a TTY only", async () => {
    const db = await freshDatabase("sqlite");
    await cli(["migrate", "--db", db]);
    expect(await onTty(["health", "--db", db])).toContain(ESC);
    const piped = await cli(["health", "--db", db], { env: { NO_COLOR: undefined } });
    expect(piped.stdout).not.toContain(ESC);
  });

  it("--no-color and NO_COLOR turn colour off on a TTY", async () => {
    const db = await freshDatabase("sqlite");
    await cli(["migrate", "--db", db]);
    expect(await onTty(["health", "--db", db, "--no-color"])).not.toContain(ESC);
    expect(await onTty(["health", "--db", db], { NO_COLOR: "1" })).not.toContain(ESC);
  });

  it("an empty NO_COLOR leaves colour on (no-color.org); FORCE_COLOR colours a pipe, FORCE_COLOR=0 does not; --no-color wins", async () => {
    const db = await freshDatabase("sqlite");
    await cli(["migrate", "--db", db]);
    expect(await onTty(["health", "--db", db], { NO_COLOR: "" })).toContain(ESC);
    expect((await cli(["health", "--db", db], { env: { NO_COLOR: undefined, FORCE_COLOR: "1" } })).stdout).toContain(ESC);
    expect((await cli(["health", "--db", db], { env: { NO_COLOR: undefined, FORCE_COLOR: "0" } })).stdout).not.toContain(ESC);
    expect((await cli(["health", "--db", db, "--no-color"], { env: { NO_COLOR: undefined, FORCE_COLOR: "1" } })).stdout).not.toContain(ESC);
    expect((await cli(["health", "--db", db, "--json"], { env: { NO_COLOR: undefined, FORCE_COLOR: "1" } })).stdout).not.toContain(ESC);
  });

  it("a table fits the terminal's width, wrapping its widest columns (migrate --check on 80 columns); a pipe keeps whole lines", async () => {
    const db = await freshDatabase("sqlite");
    const piped = await cli(["migrate", "--check", "--db", db]);
    // the table's lines (prose the terminal wraps itself)
    const widest = (text: string) =>
      Math.max(...stripVTControlCharacters(text).split(/\r?\n/).filter((line) => /^[│┌├└]/.test(line)).map((line) => line.length));
    expect(widest(piped.stdout)).toBeGreaterThan(80);
    const onNarrow = await runOnTty(["migrate", "--check", "--db", db], [], { NO_COLOR: "1" }, 80);
    expect(widest(onNarrow.output)).toBeLessThanOrEqual(80);
    expect(stripVTControlCharacters(onNarrow.output)).toContain("CREATE INDEX");
  });

  it("--json on a TTY is exactly one uncoloured JSON object", async () => {
    const db = await freshDatabase("sqlite");
    await cli(["migrate", "--db", db]);
    const out = (await onTty(["race-test", "--n", "20", "--db", db, "--json"])).trim();
    expect(out).not.toContain(ESC);
    expect(JSON.parse(out)).toMatchObject({ ok: true, n: 20 });
  });

  it("Ctrl-C while race-test's spinner spins exits 130 with one line, and the ledger still reconciles", async () => {
    const db = await freshDatabase("sqlite");
    await cli(["migrate", "--db", db]);
    const run = await runOnTty(["race-test", "--n", "1000000", "--db", db], [{ waitFor: "racing", send: "\x03" }]);
    expect(run.code).toBe(130);
    expect(run.output).toMatch(/error: race-test interrupted/);
    const verify = await cli(["tokens", "verify", "--db", db, "--json"]);
    expect(verify.json).toMatchObject({ ok: true, drifting: [] });
  });
});
