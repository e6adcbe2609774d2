// `npm run bench`: every SPEC §7 figure, each a ratio against a raw baseline measured in this run.
// Run one alone with `node bench/<name>.mjs`.
import { existsSync } from "node:fs";
import { printResults } from "./report.mjs";

const SUITES = ["startup", "tokens-sqlite", "tokens-pg", "seed", "queries"];

for (const suite of SUITES) {
  const file = new URL(`./${suite}.mjs`, import.meta.url);
  if (!existsSync(file)) continue;
  console.log(`\n== ${suite}`);
  const { run } = await import(file.href);
  printResults(await run());
}
