import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BIN, cli, freshDatabase } from "./support/databases.js";

const ESC = "\u001b[";

/** Runs the CLI under a pseudo-terminal (util-linux `script`), as a person at a terminal would. */
function onTty(args: string[], env: Record<string, string> = {}): Promise<string> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm-256color" };
  delete childEnv.NO_COLOR;
  delete childEnv.CI;
  Object.assign(childEnv, env);
  return new Promise((resolve, reject) => {
    execFile("script", ["-qec", command, "/dev/null"], { env: childEnv, timeout: 60_000 }, (error, stdout) => {
      if (error && typeof error.code !== "number") reject(error);
      else resolve(stdout);
    });
  });
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

  it("--json on a TTY is exactly one uncoloured JSON object", async () => {
    const db = await freshDatabase("sqlite");
    await cli(["migrate", "--db", db]);
    const out = (await onTty(["race-test", "--n", "20", "--db", db, "--json"])).trim();
    expect(out).not.toContain(ESC);
    expect(JSON.parse(out)).toMatchObject({ ok: true, n: 20 });
  });
});
