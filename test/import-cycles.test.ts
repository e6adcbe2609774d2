/**
 * No import loops in src/: two files that import each other (directly or round a ring) mean that
 * what both need belongs in a leaf. Self-contained on purpose (no madge, no file outside the
 * repository): it reads every src/**\/*.ts, takes its relative imports — `import`, `import type`,
 * `export … from` and dynamic `import()` — and finds the strongly connected components of that graph
 * (Tarjan). The same check as ../shared/tools/import-cycles.mjs, which CI may not have.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** The files a file imports, by path relative to the repository (`./x.js` is `./x.ts`). */
function importsOf(file: string, known: ReadonlySet<string>): string[] {
  const text = readFileSync(file, "utf8");
  const found = new Set<string>();
  for (const match of text.matchAll(IMPORT)) {
    const target = resolve(dirname(file), (match[1] as string).replace(/\.js$/, ".ts"));
    for (const candidate of [target, `${target}.ts`, join(target, "index.ts")]) {
      if (known.has(candidate)) {
        found.add(candidate);
        break;
      }
    }
  }
  return [...found];
}

/** The loops of a graph: its strongly connected components of more than one file, or a file importing itself. */
function importLoops(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node) as number, low.get(to) as number));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node) as number, index.get(to) as number));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    for (let member = stack.pop(); member !== undefined; member = stack.pop()) {
      onStack.delete(member);
      component.push(member);
      if (member === node) break;
    }
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) loops.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return loops;
}

describe("import loops", () => {
  it("finds a loop of three files and a file that imports itself, and nothing in a chain", () => {
    const graph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a", "d"]],
      ["d", ["e"]],
      ["e", []],
      ["f", ["f"]],
    ]);
    expect(importLoops(graph)).toEqual([["a", "b", "c"], ["f"]]);
  });

  it("reads import type, export from and dynamic import() as imports", () => {
    const text = `import type { A } from "./a.js";\nexport { B } from "../b.js";\nconst c = await import("./c.js");\nimport "./d.js";\nimport x from "drizzle-orm";`;
    expect([...text.matchAll(IMPORT)].map((match) => match[1])).toEqual(["./a.js", "../b.js", "./c.js", "./d.js"]);
  });

  it("src/ has no import loop", () => {
    const files = sourceFiles(join(ROOT, "src"));
    const known = new Set(files);
    const graph = new Map(files.map((file) => [file, importsOf(file, known)]));
    const loops = importLoops(graph).map((loop) => loop.map((file) => relative(ROOT, file)).join(" <-> "));
    expect(files.length).toBeGreaterThan(50);
    expect(loops).toEqual([]);
  });
});
