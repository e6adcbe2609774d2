#!/usr/bin/env node
/** `npm run bench`: every bench/*.mjs script in turn (each prints its own ratio); exit 1 when any misses its target. */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const self = basename(fileURLToPath(import.meta.url));
let failed = 0;
for (const file of readdirSync(here).filter((name) => name.endsWith(".mjs") && name !== self).sort()) {
  console.log(`\n== bench/${file}`);
  const { status } = spawnSync(process.execPath, [join(here, file)], { stdio: "inherit" });
  if (status !== 0) failed += 1;
}
process.exitCode = failed === 0 ? 0 : 1;
