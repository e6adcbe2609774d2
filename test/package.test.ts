/**
 * briefdb as an app installs it: the packed tarball (npm pack, the files a registry would serve)
 * unpacked into an empty project's node_modules, its dependencies linked from this checkout's (no
 * network), then an ES module, a CommonJS file and a strict TypeScript app (module nodenext) use it.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");

let app: string;

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), "briefdb-app-"));
  const packed = join(app, "packed");
  mkdirSync(packed);
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", packed], { cwd: ROOT });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  const modules = join(app, "node_modules");
  mkdirSync(join(modules, "briefdb"), { recursive: true });
  await run("tar", ["-xzf", join(packed, filename), "-C", join(modules, "briefdb"), "--strip-components=1"]);
  // what npm would install beside it — the closure of package.json's dependencies, not our
  // devDependencies — taken from this checkout instead of the registry; and the app's own
  // @types/node
  for (const path of [...dependencyClosure(ROOT), join(ROOT, "node_modules/@types/node"), join(ROOT, "node_modules/undici-types")]) {
    const name = path.slice(path.lastIndexOf("/node_modules/") + "/node_modules/".length);
    if (existsSync(join(modules, name))) continue;
    mkdirSync(dirname(join(modules, name)), { recursive: true });
    symlinkSync(path, join(modules, name));
  }
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "an-app", private: true }));
}, 120_000);

/** The folders of a package's dependencies and theirs, found as Node finds them (nearest node_modules up). */
function dependencyClosure(root: string): string[] {
  const found = new Set<string>();
  const visit = (dir: string) => {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      let from = dir;
      while (!existsSync(join(from, "node_modules", name)) && from !== root) from = dirname(from);
      const path = join(from, "node_modules", name);
      if (!existsSync(path) || found.has(path)) continue;
      found.add(path);
      visit(realpathSync(path));
    }
  };
  visit(root);
  return [...found];
}

const CONSUMER = (load: string) => `${load}
(async () => {
  const db = await openDatabase("file:" + require("node:path").join(__dirname, "app.db"));
  await migrate(db);
  await createUser(db, { id: "u1", email: "u1@app.invalid", name: "u1", openingBalance: 10 });
  const result = await atomicTokenOperation(db, "u1", "deduct", 3, "installed");
  await db.close();
  console.log(JSON.stringify({ ok: result.success, balance: result.success ? result.data.balance : null }));
})();
`;

describe("the installed package", () => {
  it("require('briefdb') works from a CommonJS file, with the schema entry points", async () => {
    const file = join(app, "consumer.cjs");
    writeFileSync(
      file,
      CONSUMER('const { openDatabase, migrate, createUser, atomicTokenOperation } = require("briefdb");\nconst pg = require("briefdb/schema/pg");\nif (typeof pg.users !== "object") throw new Error("briefdb/schema/pg has no users table");'),
    );
    const { stdout } = await run(process.execPath, [file], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({ ok: true, balance: 7 });
  });

  it("import from an ES module works", async () => {
    const dir = join(app, "esm");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "consumer.mjs");
    writeFileSync(
      file,
      CONSUMER('import { openDatabase, migrate, createUser, atomicTokenOperation } from "briefdb";\nimport { createRequire } from "node:module";\nimport { fileURLToPath } from "node:url";\nconst require = createRequire(import.meta.url);\nconst __dirname = fileURLToPath(new URL(".", import.meta.url));'),
    );
    const { stdout } = await run(process.execPath, [file], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({ ok: true, balance: 7 });
  });

  it("a strict TypeScript app (module nodenext, CommonJS and ESM files) type-checks against the package's declarations", async () => {
    const dir = join(app, "ts");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", noEmit: true, skipLibCheck: true, types: ["node"] }, include: ["*.ts", "*.mts", "*.cts"] }),
    );
    const body = `
export async function charge(userId: string): Promise<number | null> {
  const db = await openDatabase(process.env.DATABASE_URL);
  // @ts-expect-error a URL's dialect is known at run time only: never typed as SQLite (nor PostgreSQL)
  const sqliteOnly: SqliteBriefDatabase = db;
  void sqliteOnly;
  const result = await atomicTokenOperation(db, userId, "deduct", 1, "typed");
  await db.close();
  return result.success ? result.data.balance : null;
}
`;
    writeFileSync(join(dir, "app.mts"), `import { atomicTokenOperation, openDatabase, type SqliteBriefDatabase } from "briefdb";\n${body}`);
    writeFileSync(join(dir, "app.cts"), `import briefdb = require("briefdb");\nconst { atomicTokenOperation, openDatabase } = briefdb;\ntype SqliteBriefDatabase = briefdb.SqliteBriefDatabase;\n${body}`);
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    const checked = await run(process.execPath, [tsc, "-p", dir], { cwd: app }).catch((error: { stdout: string }) => error);
    expect(checked.stdout).toBe("");
  });

  it("the installed CLI serves the dashboard's page and assets from the package, and writes an HTML report", async () => {
    const bin = join(app, "node_modules", "briefdb", "bin", "briefdb");
    const db = `file:${join(app, "dashboard.db")}`;
    await run(process.execPath, [bin, "migrate", "--db", db], { cwd: app });
    const report = join(app, "race.html");
    await run(process.execPath, [bin, "race-test", "--db", db, "--n", "10", "--report", report], { cwd: app });
    expect(readFileSync(report, "utf8")).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" class="chart histogram"/);
    const child = spawn(process.execPath, [bin, "serve", "--db", db, "--port", "0", "--json"], { cwd: app, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const started = await new Promise<{ url: string }>((resolveStart, reject) => {
        let out = "";
        child.stdout.on("data", (chunk) => {
          out += String(chunk);
          if (out.includes("\n")) resolveStart(JSON.parse(out));
        });
        child.on("exit", (code) => reject(new Error(`serve exited ${code}`)));
      });
      for (const path of ["/", "/assets/dashboard.js", "/assets/charts.js", "/assets/dashboard.css", "/assets/favicon.svg"]) {
        expect((await fetch(`${started.url}${path}`)).status, path).toBe(200);
      }
    } finally {
      child.kill("SIGTERM");
    }
  });
});
