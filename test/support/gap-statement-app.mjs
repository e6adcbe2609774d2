// An app on briefdb's built library whose one PostgreSQL connection is reset by a server that went
// away (test/frozen-database.test.ts cuts the proxy in front of it), with a deduct and a read sent
// between the socket's 'error' and its 'close' — postgres.js 3.4.9 never answers a statement sent
// there. Both must be answered by themselves, the database left open. Its own process (the pool's
// socket is found among the process's). Prints "ready" once the parent may cut, then one JSON
// line: what each call got. Usage: node gap-statement-app.mjs <url through the proxy> <batch|nobatch>
import { Socket } from "node:net";
import { sql } from "drizzle-orm";
import { atomicTokenOperation, createUser, openDatabase } from "../../dist/index.js";

const url = String(process.argv[2]);
const batch = process.argv[3] === "batch";
const db = await openDatabase(url, { poolSize: 1, batch });
const user = `gap-${process.pid}-${batch ? "b" : "n"}`;
await createUser(db, { id: user, email: `${user}@example.test`, name: user, openingBalance: 100 });
// the connection watch does not make a driver error show the statement's SQL and parameters
/** @param {any} error @returns {any} */
const innermost = (error) => (error?.cause ? innermost(error.cause) : error);
const errorFields = await db.all(sql`SELECT ${1}::int / 0`).then(
  () => [],
  (/** @type {unknown} */ error) => Object.keys(innermost(error)).filter((key) => ["query", "parameters", "args", "types", "stack"].includes(key)),
);
const port = Number(new URL(url).port);
// the pool's socket (postgres.js does not show it): the only TCP socket of this process to the proxy
const handles = /** @type {{ _getActiveHandles(): unknown[] }} */ (/** @type {unknown} */ (process))._getActiveHandles();
const sockets = handles.filter(/** @returns {handle is Socket} */ (handle) => handle instanceof Socket && handle.remotePort === port);
if (sockets.length !== 1) throw new Error(`expected one socket to port ${port}, found ${sockets.length}`);
/** @param {any} error */
const codeOf = (error) => error?.code ?? error?.cause?.code ?? String(error);
/** @type {Promise<Promise<[unknown, unknown]>>} */
const sent = new Promise((resolve) =>
  // after postgres.js's own listener, which found nothing to answer: both go to that connection
  /** @type {Socket} */ (sockets[0]).once("error", () =>
    resolve(
      Promise.all([
        // the read first: unbatched, the deduct's transaction would hold the pool's one connection
        db.all(sql`SELECT 2`).then(() => "answered", (/** @type {unknown} */ error) => codeOf(error)),
        atomicTokenOperation(db, user, "deduct", 1, "gap").then(
          (/** @type {any} */ result) => (result.success ? "ok" : result.error.code),
          (/** @type {unknown} */ error) => `threw ${codeOf(error)}`,
        ),
      ]),
    ),
  ),
);
process.stdout.write("ready\n");
const [read, deduct] = await (await sent);
process.stdout.write(`${JSON.stringify({ deduct, read, errorFields })}\n`);
await db.close({ timeoutMs: 0 });
