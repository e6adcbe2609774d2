// Bundles the CLI (dist/cli.js, from tsc) into itself plus lazily loaded chunks, so that start-up
// reads a few dozen files instead of hundreds of small modules (the start-up targets in docs/architecture.md). The
// library (dist/index.js and the rest of tsc's output) is left as it is for importers.
import { build } from "esbuild";

await build({
  entryPoints: ["dist/cli.js"],
  outdir: "dist",
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunks/[name]-[hash]",
  // native, WebAssembly beside its module, or dynamically required at run time: loaded from node_modules as usual
  external: ["better-sqlite3", "postgres", "libpg-query"],
  banner: { js: "import { createRequire as __briefdbRequire } from 'node:module'; const require = __briefdbRequire(import.meta.url);" },
  logLevel: "warning",
});
