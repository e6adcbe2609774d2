// `npm run bench`: every performance figure of docs/architecture.md, each script in its own process (so that one's memory
// and connections never colour another's figures), each printing ratios against baselines
// measured in the same run. Exit 1 when any misses its target. Run one alone: node bench/<name>.mjs
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const SUITES = ["startup", "tokens-sqlite", "tokens-pg", "batching", "seed", "queries", "migrate-online"];

let failed = 0;
for (const suite of SUITES) {
  console.log(`\n== bench/${suite}.mjs`);
  const { status } = spawnSync(process.execPath, [fileURLToPath(new URL(`./${suite}.mjs`, import.meta.url))], { stdio: "inherit" });
  if (status !== 0) failed += 1;
}
process.exitCode = failed === 0 ? 0 : 1;
