/**
 * The examples of the README and the guides, taken from their fenced blocks as a reader copies them:
 * - every ```ts block of README.md and docs/*.md type-checks with `strict` under `module: nodenext`
 *   against the built package (the name `briefdb`, as an app imports it). A block may hold several
 *   files, each opened by a `// path/to/file.ts` line (`@/…` is the app's root, as in Next.js). A
 *   block whose first line is `// fragment: …` names what it takes from the app around it: it is
 *   checked inside an async function, with those names declared by FRAGMENT_NAMES below.
 * - the README's whole programs (its ```ts blocks that are not fragments) and the library guide's
 *   run, compiled, on the database the seed leaves.
 * - every ```sh block of the README runs in a shell, but the set-up block (`npm install && npm run
 *   demo`, which CI itself runs), with two stand-ins for what a clone has: `npx briefdb` runs the
 *   built CLI, and the placeholder server (postgres://me:secret@localhost:5432/briefs) is a test
 *   PostgreSQL database.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, cli, freshDatabase } from "./support/databases.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const DOCUMENTS = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`)];
const PLACEHOLDER_PG = "postgres://me:secret@localhost:5432/briefs";

/** What a fragment takes from the app around it, typed as an app would have it. */
const FRAGMENT_NAMES = `
import type { BriefDatabase } from "briefdb";
declare global {
  const db: BriefDatabase;
  const userId: string;
  const briefId: string;
  const estimate: number;
  const prompt: string;
  const newBrief: { id: string; userId: string; title: string };
  const log: { warn(line: string): void };
  function sessionUser(request: Request): Promise<string>;
  function generateBrief(prompt: string): Promise<{ tokensUsed: number }>;
  function loadBriefs(): Promise<unknown[]>;
  function refuse(code: string): Response;
}
export {};
`;

interface Block {
  readonly document: string;
  readonly line: number;
  readonly language: string;
  readonly text: string;
}

function blocksOf(document: string): Block[] {
  const lines = readFileSync(join(ROOT, document), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)/.exec(lines[i]!);
    if (open === null) continue;
    const end = lines.indexOf("```", i + 1);
    blocks.push({ document, line: i + 1, language: open[1]!, text: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return blocks;
}

const isFragment = (block: Block) => /^\/\/ fragment:/.test(block.text);

/** A block's files: split at each `// path.ts` line; a block without one is one file. */
function filesOf(block: Block, name: string): Array<{ path: string; text: string }> {
  const parts = block.text.split(/^(?=\/\/ [\w@./[\]-]+\.ts\b)/m);
  return parts.map((text, i) => {
    const path = /^\/\/ ([\w@./[\]-]+\.ts)\b/.exec(text)?.[1];
    return { path: join(name, path ?? `block-${block.line}-${i}.ts`), text };
  });
}

/** A fragment's imports stay at the top; the rest runs inside an async function. */
function wrapFragment(text: string): string {
  const lines = text.split("\n");
  const imports = lines.filter((line) => /^import /.test(line));
  const body = lines.filter((line) => !/^import /.test(line));
  return `${imports.join("\n")}\nexport async function fragment(): Promise<unknown> {\n${body.join("\n")}\n  return undefined;\n}\n`;
}

let app: string;

beforeAll(() => {
  // an app folder as in test/package.test.ts: briefdb by its name, its dependencies beside it
  app = mkdtempSync(join(tmpdir(), "briefdb-doc-examples-"));
  const modules = join(app, "node_modules");
  mkdirSync(modules);
  symlinkSync(ROOT, join(modules, "briefdb"));
  for (const name of readdirSync(join(ROOT, "node_modules"))) {
    if (name !== "briefdb" && !name.startsWith(".")) symlinkSync(join(ROOT, "node_modules", name), join(modules, name));
  }
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "an-app", private: true, type: "module" }));
});

function writeProject(dir: string, files: Array<{ path: string; text: string }>, emit: boolean): void {
  mkdirSync(dir, { recursive: true });
  for (const file of files) {
    mkdirSync(dirname(join(dir, file.path)), { recursive: true });
    writeFileSync(join(dir, file.path), file.text);
  }
  const compilerOptions = {
    strict: true,
    module: "nodenext",
    moduleResolution: "nodenext",
    target: "es2022",
    lib: ["es2022"], // no DOM: a server's globals are Node's (@types/node)
    skipLibCheck: true,
    types: ["node"],
    typeRoots: [join(ROOT, "node_modules/@types")],
    ...(emit ? { outDir: "out" } : { noEmit: true }),
  };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, include: ["**/*.ts"], exclude: ["out"] }));
}

async function tsc(dir: string): Promise<string> {
  const compiler = join(ROOT, "node_modules/typescript/bin/tsc");
  const checked = await run(process.execPath, [compiler, "-p", dir]).catch((error: { stdout: string }) => error);
  return checked.stdout.trim();
}

describe("the TypeScript examples of the README and the guides", () => {
  const blocks = DOCUMENTS.flatMap(blocksOf).filter((block) => block.language === "ts");

  it("there are some, and each type-checks with strict under module nodenext", { timeout: 120_000 }, async () => {
    expect(blocks.length).toBeGreaterThanOrEqual(7);
    const dir = join(app, "typecheck");
    const files = blocks.flatMap((block) =>
      filesOf(block, `doc-${DOCUMENTS.indexOf(block.document)}`).map((file) => {
        // the app's own modules (`@/lib/db`) are files of this document's blocks
        const text = file.text.replace(/from "@\/([^"]+)"/g, (_, target: string) => {
          const path = relative(dirname(file.path), join(`doc-${DOCUMENTS.indexOf(block.document)}`, target));
          return `from "${path.startsWith(".") ? path : `./${path}`}.js"`;
        });
        return { path: file.path, text: `// ${block.document}:${block.line}\n${isFragment(block) ? wrapFragment(text) : text}` };
      }),
    );
    writeProject(dir, [...files, { path: "fragment-names.d.ts", text: FRAGMENT_NAMES }], false);
    expect(await tsc(dir)).toBe("");
  });
});

describe("the README's shell and whole programs, run", () => {
  let folder: string;
  let pgUrl: string;

  beforeAll(async () => {
    folder = join(app, "run");
    mkdirSync(folder, { recursive: true });
    pgUrl = await freshDatabase("postgresql");
    // the database the demo leaves: the schema and the seed, in the default ./briefdb.db
    expect((await cli(["seed", "--local", "--db", `file:${join(folder, "briefdb.db")}`])).code).toBe(0);
  }, 120_000);

  it("every shell block but the set-up one runs as written", { timeout: 120_000 }, async () => {
    const blocks = blocksOf("README.md").filter((block) => block.language === "sh" && !/npm run demo/.test(block.text));
    expect(blocks.length).toBeGreaterThanOrEqual(1);
    for (const block of blocks) {
      const script = `set -e\nnpx() { "$@"; }\nbriefdb() { "${process.execPath}" "${BIN}" "$@"; }\n${block.text.replaceAll(PLACEHOLDER_PG, pgUrl)}`;
      const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
      delete env.DATABASE_URL;
      const result = await run("sh", ["-c", script], { cwd: folder, env }).catch((error: { code: number; stderr: string }) => error);
      expect("code" in result ? `README.md:${block.line} exited ${result.code}: ${result.stderr}` : "ok").toBe("ok");
    }
  });

  it("the README's program and the library guide's run on the seeded database", { timeout: 120_000 }, async () => {
    const programs = [...blocksOf("README.md"), ...blocksOf("docs/library.md")].filter((block) => block.language === "ts" && !isFragment(block));
    expect(programs.length).toBe(2);
    for (const [i, block] of programs.entries()) {
      const dir = join(app, `program-${i}`);
      writeProject(dir, [{ path: "main.ts", text: block.text }], true);
      expect(await tsc(dir)).toBe("");
      const env = { ...process.env, DATABASE_URL: `file:${join(folder, "briefdb.db")}` };
      const result = await run(process.execPath, [join(dir, "out/main.js")], { cwd: folder, env }).catch((error: { code: number; stderr: string }) => error);
      expect("code" in result ? `${block.document}:${block.line} exited ${result.code}: ${result.stderr}` : "ok").toBe("ok");
    }
  });
});
