import { execFileSync } from "node:child_process";
const sets = {
  node: "0",
  withRoot: "await import('drizzle-orm'); await import('drizzle-orm/sqlite-core'); await import('drizzle-orm/better-sqlite3')",
  noRoot: "await import('drizzle-orm/sql'); await import('drizzle-orm/sqlite-core'); await import('drizzle-orm/better-sqlite3')",
  driverOnly: "await import('drizzle-orm/better-sqlite3')",
  bs3: "await import('better-sqlite3')",
  cliBuild: "const {buildProgram} = await import('./dist/cli.js'); await buildProgram()",
};
const res = Object.fromEntries(Object.keys(sets).map((k) => [k, []]));
for (let i = 0; i < 9; i++) for (const [k, code] of Object.entries(sets)) { const s = performance.now(); execFileSync(process.execPath, ["--input-type=module", "-e", code]); res[k].push(performance.now() - s); }
for (const [k, v] of Object.entries(res)) { v.sort((a, b) => a - b); console.log(k.padEnd(12), v[4].toFixed(0)); }
