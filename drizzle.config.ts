/**
 * drizzle-kit's configuration: `npx drizzle-kit generate`, `check` and `studio` work without flags.
 *
 * The dialect follows the database you point at, as the CLI does:
 * - BRIEFDB_DIALECT=sqlite or BRIEFDB_DIALECT=postgresql, if set, decides (`npm run generate` sets
 *   it to write both dialects' migrations, whatever DATABASE_URL says);
 * - otherwise DATABASE_URL: postgres:// or postgresql:// is PostgreSQL, a file or sqlite: URL is
 *   SQLite; unset, the CLI's default ./briefdb.db (SQLite).
 * Each dialect has its own schema (src/db/<dialect>/schema.ts) and migrations (drizzle/sqlite,
 * drizzle/pg). Studio connects to DATABASE_URL when it is of the chosen dialect; with
 * BRIEFDB_DIALECT naming the other one there is nothing to connect to, and only generate and
 * check work. Apply migrations with `briefdb migrate`, not drizzle-kit.
 */
import { defineConfig, type Config } from "drizzle-kit";
import { chooseUrl, parseTarget, type DialectName } from "./src/db/target.js";

const DIALECTS: readonly DialectName[] = ["sqlite", "postgresql"];

/** Where one dialect's schema and migrations are. */
export const DIALECT_FILES = {
  sqlite: { schema: "./src/db/sqlite/schema.ts", out: "./drizzle/sqlite" },
  postgresql: { schema: "./src/db/pg/schema.ts", out: "./drizzle/pg" },
} as const satisfies Record<DialectName, { schema: string; out: string }>;

/** The configuration for an environment (exported for the tests; drizzle-kit reads the default). */
export function drizzleConfig(env: NodeJS.ProcessEnv): Config {
  const url = chooseUrl(undefined, env);
  const target = parseTarget(url);
  const dialect = chosenDialect(env.BRIEFDB_DIALECT) ?? target.dialect;
  const files = DIALECT_FILES[dialect];
  if (dialect === "sqlite") {
    return defineConfig({
      dialect,
      ...files,
      ...(target.dialect === "sqlite" ? { dbCredentials: { url: target.path } } : {}),
    });
  }
  return defineConfig({ dialect, ...files, ...(target.dialect === "postgresql" ? { dbCredentials: { url } } : {}) });
}

function chosenDialect(name: string | undefined): DialectName | undefined {
  if (name === undefined || name === "") return undefined;
  if ((DIALECTS as readonly string[]).includes(name)) return name as DialectName;
  throw new Error(`BRIEFDB_DIALECT must be one of ${DIALECTS.join(", ")}, not "${name}"`);
}

export default drizzleConfig(process.env);
