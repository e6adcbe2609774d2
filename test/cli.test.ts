import { describe, expect, it } from "vitest";
import { cli } from "./support/databases.js";

describe("cli conventions", () => {
  it("--version prints the package version; with --json as one JSON object", async () => {
    const result = await cli(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const json = await cli(["--json", "--version"]);
    expect(json.json).toEqual({ ok: true, version: result.stdout.trim() });
  });

  it.each([["--help"], ["migrate", "--help"], ["health", "--help"]])("%s %s shows examples", async (...args) => {
    const result = await cli(args.filter(Boolean));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Examples:");
  });

  it.each([
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["health", "--bogus"], /unknown option '--bogus'/],
    [["health", "--samples", "abc"], /--samples takes a whole number/],
    [["health", "--samples", "0"], /--samples takes a whole number/],
    [["--timeout", "-5", "health"], /--timeout/],
    [["migrate", "--status", "--dry-run"], /--status and --dry-run/],
    [["tokens"], /a command is missing/],
    [[], /a command is missing/],
    [["help", "frob"], /unknown command 'frob'/],
    [["tokens", "help", "frob"], /unknown command 'frob'/],
  ])("bad usage %j is exit 2 USAGE with one error line", async (args, message) => {
    const result = await cli([...args, "--json"]);
    expect(result.code).toBe(2);
    expect(result.json).toMatchObject({ ok: false, error: { code: "USAGE" } });
    expect(result.json?.error.message).toMatch(message);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
  });

  it("an unknown command or option: one line whose hint offers the near name and names that command's help", async () => {
    const command = await cli(["migrat"]);
    expect(command.code).toBe(2);
    expect(command.stderr).toBe("error: unknown command 'migrat' (hint: did you mean migrate? see `briefdb --help`)\n");
    const option = await cli(["tokens", "deduct", "u", "5", "--kye", "k"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toBe("error: unknown option '--kye' (hint: did you mean --key? see `briefdb tokens deduct --help`)\n");
  });

  it("help with an unknown name is exit 2 as the name alone is (it printed the parent's help, exit 0); help of a real command, and a user called help, are not", async () => {
    const unknown = await cli(["help", "frob"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("error: unknown command 'frob' (hint: see `briefdb --help`)\n");
    expect(unknown.stdout).toBe("");
    expect((await cli(["help", "tokens"])).code).toBe(0);
    expect((await cli(["tokens", "help", "deduct"])).stdout).toMatch(/^Usage: briefdb tokens deduct/);
    const user = await cli(["tokens", "balance", "help", "--db", "file:/nonexistent-dir-briefdb/x.db", "--json"]);
    expect(user.json?.error.code).not.toBe("USAGE");
  });

  it.each([[[]], [["tokens"]]])("%j alone prints its help (exit 0), as gh and Prisma do", async (args) => {
    const result = await cli(args);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Usage: ${["briefdb", ...args].join(" ")} \\[options\\] \\[command\\]`));
    expect(result.stdout).toContain("Commands:");
    expect(result.stderr).toBe("");
  });

  it("a subcommand's help shows the global options it takes (--db, --json)", async () => {
    const result = await cli(["tokens", "deduct", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Global Options:");
    expect(result.stdout).toMatch(/--db <url>/);
    expect(result.stdout).toMatch(/--json/);
  });

  it.each([
    ["mysql://root:topsecret@localhost/briefs"],
    ["http://example.invalid/db"],
    ["postgres://u:topsecret@localhost:99999/x"],
    ["postgres://u:topsecret@local host/x"],
    ["postgres://u:topsecret@localhost/x?sslmode=sometimes"],
    [""],
    ["postgres:/u:topsecret@db.example.invalid/x"],
    ["postgres:u:topsecret@db.example.invalid/x"],
    ["postgres://u:top%ZZsecret@db.example.invalid/x"],
    ["postgres://u:topsecret@/x?host=/tmp/a,/tmp/b"],
    ["postgres://u:topsecret@a.example.invalid,a.example.invalid/x"],
    ["postgres://u:topsecret@a.example.invalid,b.example.invalid/x?target_session_attrs=master"],
  ])("the URL %j is exit 2 INVALID_URL, password never printed", async (url) => {
    const result = await cli(["health", "--db", url, "--json"]);
    expect(result.code).toBe(2);
    expect(result.json).toMatchObject({ ok: false, error: { code: "INVALID_URL" } });
    expect(result.stdout + result.stderr).not.toContain("topsecret");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it.each([
    ["tokens", "deduct", "", "5"],
    ["tokens", "credit", "", "5"],
    ["tokens", "hold", "", "5"],
    ["tokens", "balance", ""],
    ["tokens", "history", ""],
    ["tokens", "holds", ""],
  ])("an empty user id (%s %s) is exit 2 USAGE before connecting", async (...args) => {
    // the host does not resolve: connecting first would be exit 1 DB_UNREACHABLE
    const result = await cli([...args, "--db", "postgres://u:pw@db.example.invalid/x", "--json"]);
    expect(result.code).toBe(2);
    expect(result.json).toMatchObject({ ok: false, error: { code: "USAGE" } });
    expect(result.json?.error.message).toMatch(/user id is required/);
  });

  it.each([
    ["tokens", "deduct", "u1", "5", "--brief", ""],
    ["tokens", "hold", "u1", "5", "--brief", ""],
  ])("an empty --brief (%s %s) is exit 2 USAGE before connecting", async (...args) => {
    const result = await cli([...args, "--db", "postgres://u:pw@db.example.invalid/x", "--json"]);
    expect(result.code).toBe(2);
    expect(result.json).toMatchObject({ ok: false, error: { code: "USAGE" } });
  });

  it("DATABASE_URL is used when --db is absent, and --db wins over it", async () => {
    const fromEnv = await cli(["health", "--json"], { env: { DATABASE_URL: "mysql://x:envsecret@h/db" } });
    expect(fromEnv.json?.error.code).toBe("INVALID_URL");
    expect(fromEnv.stdout).not.toContain("envsecret");
    const flagWins = await cli(["health", "--json", "--db", "sqlite:/nonexistent/dir/x.db"], {
      env: { DATABASE_URL: "mysql://x@h/db" },
    });
    expect(flagWins.json?.error.code).toBe("DB_UNREACHABLE");
  });

  it("health --json on a SQLite file that cannot be opened is the whole report, as for an unreachable server", async () => {
    for (const db of ["sqlite:/nonexistent/dir/x.db", "postgres://u:pw@127.0.0.1:1/x"]) {
      const result = await cli(["health", "--db", db, "--json"]);
      expect(result.code).toBe(1);
      expect(result.json).toMatchObject({
        ok: false,
        healthy: false,
        error: { code: "DB_UNREACHABLE" },
        migrations: null,
        integrity: { checked: false, ok: null },
      });
      expect(result.json?.problems).toHaveLength(1);
    }
  });

  it("never prints a stack trace, unless BRIEFDB_DEBUG=1", async () => {
    const quiet = await cli(["tokens", "balance", "u1", "--db", "sqlite:/nonexistent/dir/x.db"]);
    expect(quiet.stderr).not.toMatch(/\n\s+at /);
    const debug = await cli(["tokens", "balance", "u1", "--db", "sqlite:/nonexistent/dir/x.db"], { env: { BRIEFDB_DEBUG: "1" } });
    expect(debug.stderr).toMatch(/\n\s+at /);
  });
});
