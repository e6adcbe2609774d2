import { execFile } from "node:child_process";
import { resolve } from "node:path";
import Database from "better-sqlite3";
import { eq } from "drizzle-orm";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { applyTokenOperation, atomicTokenOperation, getBalance, migrate, openDatabase, withTransaction } from "../src/index.js";
import * as pgSchema from "../src/schema/pg.js";
import * as sqliteSchema from "../src/schema/sqlite.js";
import { DIALECTS, freshDatabase } from "./support/databases.js";
import { newUser } from "./support/setup.js";

/** The app's own connection, as an app would open it. */
async function appClient(dialect: (typeof DIALECTS)[number]) {
  const url = await freshDatabase(dialect);
  if (dialect === "sqlite") {
    const client = new Database(url.slice("file:".length));
    return { client, ping: () => client.prepare("SELECT 1 AS ok").get(), end: async () => client.close() };
  }
  const client = postgres(url, { max: 3, onnotice: () => {} });
  return { client, ping: () => client`SELECT 1 AS ok`, end: () => client.end({ timeout: 5 }) };
}

describe.each(DIALECTS)("%s: sharing the app's connection and schema", (dialect) => {
  const schema = (dialect === "sqlite" ? sqliteSchema : pgSchema) as typeof pgSchema;

  it("openDatabase takes the app's client, and close() leaves it open for the app", async () => {
    const app = await appClient(dialect);
    const db = await openDatabase(app.client as postgres.Sql);
    expect(db.dialect).toBe(dialect);
    expect(db.ownsConnection).toBe(false);
    expect(db.target.display).not.toMatch(/:\/\/[^@/]*:[^@/]*@/); // no password in what it shows
    await migrate(db);
    await db.close();
    await expect(Promise.resolve(app.ping())).resolves.toBeDefined();
    await app.end();
  });

  it("the app's typed Drizzle queries read briefdb's tables on the same connection", async () => {
    const app = await appClient(dialect);
    const db = await openDatabase(app.client as postgres.Sql);
    await migrate(db);
    await newUser(db, { id: "app-1", name: "App", balance: 40 });
    const [row] = await db.drizzle.select().from(schema.users).where(eq(schema.users.id, "app-1"));
    expect(row).toMatchObject({ id: "app-1", tokenBalance: 40 });
    await db.close();
    await app.end();
  });

  it("a brief written with tx.drizzle and its deduct commit together, or roll back together", async () => {
    const app = await appClient(dialect);
    const db = await openDatabase(app.client as postgres.Sql);
    await migrate(db);
    await newUser(db, { id: "author", name: "Author", balance: 10 });
    await db.drizzle.insert(schema.models).values({ id: "m1", name: "Model", provider: "acme", slug: "model", createdAt: new Date() });
    const brief = (id: string) => ({
      id, slug: id, title: id, content: "…", userId: "author", modelId: "m1", createdAt: new Date(), updatedAt: new Date(),
    });

    const committed = await withTransaction(db, async (tx) => {
      await tx.drizzle.insert(schema.briefs).values(brief("b-ok"));
      return applyTokenOperation(db, "author", "deduct", 7, "brief generation", { briefId: "b-ok", transaction: tx });
    });
    expect(committed).toMatchObject({ success: true, data: { balance: 3 } });

    const refused = await withTransaction(db, async (tx) => {
      await tx.drizzle.insert(schema.briefs).values(brief("b-refused"));
      return applyTokenOperation(db, "author", "deduct", 7, "brief generation", { briefId: "b-refused", transaction: tx });
    });
    expect(refused.success).toBe(false);
    if (!refused.success) expect(refused.error.code).toBe("INSUFFICIENT_BALANCE");

    const briefs = await db.drizzle.select({ id: schema.briefs.id }).from(schema.briefs);
    expect(briefs.map((b) => b.id)).toEqual(["b-ok"]);
    expect(await getBalance(db, "author")).toBe(3);
    const ledger = await db.drizzle.select().from(schema.tokenTransactions).where(eq(schema.tokenTransactions.userId, "author"));
    expect(ledger.map((e) => e.amount).sort((a, b) => a - b)).toEqual([-7, 10]);
    // outside a transaction the hot path is unchanged
    expect(await atomicTokenOperation(db, "author", "deduct", 3, "rest")).toMatchObject({ success: true, data: { balance: 0 } });
    await db.close();
    await app.end();
  });
});

describe("the schema entry points", () => {
  it.each(["briefdb/schema/pg", "briefdb/schema/sqlite"])("%s resolves through the package exports, with its types", async (entry) => {
    const root = resolve(import.meta.dirname, "..");
    const script = `import(${JSON.stringify(entry)}).then((m) => console.log(Object.keys(m).sort().join(",")))`;
    const out = await new Promise<string>((done, fail) =>
      execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: root }, (error, stdout) => (error ? fail(error) : done(stdout))),
    );
    expect(out.trim().split(",")).toEqual(expect.arrayContaining(["briefs", "models", "reviews", "tokenTransactions", "users"]));
    const pkg = (await import("../package.json", { with: { type: "json" } })).default as unknown as { exports: Record<string, { types?: string }> };
    const subpath = `./${entry.slice("briefdb/".length)}`;
    expect(pkg.exports[subpath]?.types).toBe(`./dist/${entry.slice("briefdb/".length)}.d.ts`);
  });

  it("openDatabase refuses a postgres.js client that renames columns", async () => {
    const client = postgres("postgres://nobody@127.0.0.1:1/none", { transform: postgres.camel });
    await expect(openDatabase(client)).rejects.toMatchObject({ code: "USAGE" });
    await client.end();
  });
});
