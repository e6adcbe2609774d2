#!/usr/bin/env node
/**
 * The demo's stand-in for the briefs app: node:http over its own connection to the database named
 * by its first argument, with the deduct endpoint written as an app should — one call to
 * atomicTokenOperation — and healthHandler mounted beside it. The user comes from an `x-user`
 * header, as a session would give it. Prints `listening <url>` once up; SIGTERM stops it.
 */
import { createServer } from "node:http";
import { atomicTokenOperation, healthHandler, openDatabase, toNodeListener } from "briefdb";

const db = await openDatabase(process.argv[2] ?? "file:./briefdb.db", { create: false });
const health = toNodeListener(healthHandler(db));

const server = createServer(async (request, response) => {
  if (request.url === "/api/health") return health(request, response);
  if (request.method !== "POST" || request.url !== "/api/tokens/deduct") return response.writeHead(404).end();
  let body = "";
  for await (const chunk of request) body += chunk;
  const { amount } = JSON.parse(body || "{}");
  const result = await atomicTokenOperation(db, String(request.headers["x-user"]), "deduct", amount, "brief generation");
  const status = result.success ? 200 : result.error.code === "INSUFFICIENT_BALANCE" ? 402 : result.error.exitCode === 2 ? 400 : 404;
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(result.success ? { balance: result.data.balance } : { error: result.error.code }));
});

server.listen(0, "127.0.0.1", () => {
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  console.log(`listening http://127.0.0.1:${address.port}`);
});
process.once("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => db.close().then(() => process.exit(0)));
});
