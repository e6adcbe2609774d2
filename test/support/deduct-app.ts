/**
 * A small real app for race-test --url: node:http over its own briefdb connection, with the deduct
 * endpoint written two ways — on atomicTokenOperation (must hold every invariant), and as the
 * source document's read-check-write "before" code (must be caught) — plus endpoints that fail
 * (500) and that never answer (for Ctrl-C). The user comes from an `x-user` header, as a session
 * would give it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { sql } from "drizzle-orm";
import { atomicTokenOperation, type BriefDatabase } from "../../src/index.js";

export interface DeductApp {
  readonly url: string;
  /** Requests received so far, by path. */
  readonly received: Map<string, number>;
  close(): Promise<void>;
}

type Handler = (db: BriefDatabase, userId: string, amount: number) => Promise<{ status: number; body: unknown }>;

const ROUTES: Record<string, Handler> = {
  "/atomic/deduct": async (db, userId, amount) => {
    const result = await atomicTokenOperation(db, userId, "deduct", amount, "brief generation");
    if (result.success) return { status: 200, body: { balance: result.data.balance } };
    const status = { INSUFFICIENT_BALANCE: 409, USER_NOT_FOUND: 404, INVALID_AMOUNT: 400 }[result.error.code as string] ?? 500;
    return { status, body: { error: result.error.code } };
  },
  // the "before" code: read, check, then write what was read minus the amount
  "/naive/deduct": async (db, userId, amount) => {
    const [user] = await db.all<{ token_balance: number | string }>(sql`SELECT token_balance FROM users WHERE id = ${userId}`);
    if (user === undefined) return { status: 404, body: { error: "USER_NOT_FOUND" } };
    const balance = Number(user.token_balance);
    if (balance < amount) return { status: 409, body: { error: "INSUFFICIENT_BALANCE" } };
    await new Promise((resolve) => setTimeout(resolve, 2)); // the app's own await (say, the model call)
    const now = db.time.fromEpochMs(Date.now());
    await db.run(sql`UPDATE users SET token_balance = ${balance - amount}, updated_at = ${now} WHERE id = ${userId}`);
    await db.run(sql`INSERT INTO token_transactions (id, user_id, amount, type, reason, balance_after, created_at)
      VALUES (${crypto.randomUUID()}, ${userId}, ${-amount}, 'deduct', 'naive', ${balance - amount}, ${now})`);
    return { status: 200, body: { balance: balance - amount } };
  },
  "/broken/deduct": async () => ({ status: 500, body: { error: "boom" } }),
};

export async function startDeductApp(db: BriefDatabase): Promise<DeductApp> {
  const received = new Map<string, number>();
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://app").pathname;
    received.set(path, (received.get(path) ?? 0) + 1);
    if (path === "/hang") return; // never answers
    void handle(db, path, request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What /auth/deduct wants: Basic app:s3cret. */
export const APP_BASIC_AUTH = `Basic ${Buffer.from("app:s3cret").toString("base64")}`;

async function handle(db: BriefDatabase, path: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (path === "/endless/deduct") return endless(db, request, response);
  if (path === "/auth/deduct") {
    if (request.headers.authorization !== APP_BASIC_AUTH) return void response.writeHead(401).end();
    path = "/atomic/deduct";
  }
  const route = ROUTES[path];
  const userId = request.headers["x-user"];
  let reply: { status: number; body: unknown };
  try {
    const payload = JSON.parse(await readBody(request)) as { amount?: unknown };
    if (route === undefined) reply = { status: 404, body: { error: "no such route" } };
    else if (typeof userId !== "string" || typeof payload.amount !== "number") reply = { status: 400, body: { error: "bad request" } };
    else reply = await route(db, userId, payload.amount);
  } catch (error) {
    reply = { status: 500, body: { error: String(error) } };
  }
  response.writeHead(reply.status, { "content-type": "application/json" }).end(JSON.stringify(reply.body));
}

async function readBody(request: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of request) text += String(chunk);
  return text;
}

/** Deducts, then answers 200 with a body that never ends (until the client goes away). */
async function endless(db: BriefDatabase, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const userId = String(request.headers["x-user"]);
  const { amount } = JSON.parse(await readBody(request)) as { amount: number };
  const result = await atomicTokenOperation(db, userId, "deduct", amount, "brief generation");
  if (!result.success) return void response.writeHead(409).end();
  response.writeHead(200, { "content-type": "text/plain" });
  const chunk = Buffer.alloc(64 * 1024, "x");
  const write = () => {
    while (!response.destroyed && response.write(chunk));
  };
  response.on("drain", write);
  write();
}
