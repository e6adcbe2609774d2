/**
 * The GitHub Actions workflow in docs/examples/github-actions.yml, read as GitHub reads it (its
 * structure: a PostgreSQL service the job's DATABASE_URL names, Node as package.json asks) and its
 * steps run here in order, in a shell, against a test PostgreSQL standing in for the service:
 * every `run:` step but `npm ci` (this checkout is installed already), `npx briefdb` being the
 * built CLI. Then the gates are shown to gate: on a database never migrated they fail.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, freshDatabase } from "./support/databases.js";
import { parseYamlSubset } from "./support/yaml-subset.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");

interface Step {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Record<string, unknown>;
}
interface Workflow {
  readonly on: Record<string, unknown>;
  readonly jobs: Record<
    string,
    {
      readonly services: { postgres: { image: string; env: Record<string, string>; ports: string[]; options: string } };
      readonly env: { DATABASE_URL: string };
      readonly steps: Step[];
    }
  >;
}

const workflow = parseYamlSubset(readFileSync(join(ROOT, "docs/examples/github-actions.yml"), "utf8")) as Workflow;
const job = Object.values(workflow.jobs)[0]!;
const commands = job.steps.filter((step) => step.run !== undefined && step.run !== "npm ci").map((step) => step.run!);

async function runStep(script: string, url: string, cwd: string): Promise<{ code: number; output: string }> {
  const shell = `set -e\nnpx() { "$@"; }\nbriefdb() { "${process.execPath}" "${BIN}" "$@"; }\n${script}`;
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: url, NO_COLOR: "1" };
  return run("sh", ["-c", shell], { cwd, env, timeout: 120_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
  );
}

describe("docs/examples/github-actions.yml", () => {
  it("runs on pushes and pull requests, with a PostgreSQL service that DATABASE_URL names", () => {
    expect(Object.keys(workflow.on)).toEqual(expect.arrayContaining(["push", "pull_request"]));
    const { image, env, ports, options } = job.services.postgres;
    expect(image).toMatch(/^postgres:\d+/);
    expect(ports).toContain("5432:5432");
    expect(options).toMatch(/--health-cmd pg_isready/); // steps start once the server answers
    const url = new URL(job.env.DATABASE_URL);
    expect([url.hostname, url.port, url.username, url.password, url.pathname]).toEqual(["localhost", "5432", env.POSTGRES_USER, env.POSTGRES_PASSWORD, `/${env.POSTGRES_DB}`]);
  });

  it("checks out, sets up the Node.js that package.json asks for, installs from the lockfile", () => {
    const uses = job.steps.map((step) => step.uses).filter(Boolean);
    expect(uses).toEqual(expect.arrayContaining([expect.stringMatching(/^actions\/checkout@v\d+$/), expect.stringMatching(/^actions\/setup-node@v\d+$/)]));
    const node = job.steps.find((step) => step.uses?.startsWith("actions/setup-node"))?.with?.["node-version"];
    const engines = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
    expect(Number(node)).toBeGreaterThanOrEqual(Number(/\d+/.exec(engines)![0]));
    expect(job.steps.some((step) => step.run === "npm ci")).toBe(true);
  });

  it("has the gates: migrate, health --wait, migrate --status, tokens verify, the probe gates, a race", () => {
    const all = commands.join("\n");
    for (const gate of [/briefdb migrate$/m, /briefdb health --wait \d+s/, /briefdb migrate --status/, /briefdb tokens verify/, /briefdb slow-queries --probe --max-p95 \d+ --require-index/, /briefdb race-test/]) {
      expect(all).toMatch(gate);
    }
  });

  describe("its steps, run in order on a fresh database", () => {
    let url: string;
    let cwd: string;
    beforeAll(async () => {
      url = await freshDatabase("postgresql");
      cwd = mkdtempSync(join(tmpdir(), "briefdb-actions-"));
    });

    it("each passes", { timeout: 300_000 }, async () => {
      for (const script of commands) {
        const result = await runStep(script, url, cwd);
        expect({ script, code: result.code, output: result.code === 0 ? "" : result.output }).toEqual({ script, code: 0, output: "" });
      }
    });
  });

  it("the gates gate: on a database never migrated, the health and status gate fails the job", { timeout: 120_000 }, async () => {
    const url = await freshDatabase("postgresql");
    const gate = commands.find((script) => /migrate --status/.test(script))!;
    const result = await runStep(gate.replace(/--wait \d+s/, "--wait 1s"), url, mkdtempSync(join(tmpdir(), "briefdb-actions-")));
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/pending/);
  });
});
