// The library for require(): each public entry point (dist/index.js, dist/schema/*.js from tsc) bundled
// once more as CommonJS beside it (.cjs), so that a CommonJS app (`require("briefdb")`, a TypeScript
// app compiled to CommonJS) loads it on every Node 20. Dependencies stay external: they are loaded
// from node_modules as usual. import.meta.url, which CommonJS lacks, becomes the file's own URL.
import { build } from "esbuild";

await build({
  entryPoints: { index: "dist/index.js", "schema/pg": "dist/schema/pg.js", "schema/sqlite": "dist/schema/sqlite.js" },
  outdir: "dist",
  outExtension: { ".js": ".cjs" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  packages: "external",
  define: { "import.meta.url": "__briefdbFileUrl" },
  banner: { js: 'const __briefdbFileUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: "warning",
});
