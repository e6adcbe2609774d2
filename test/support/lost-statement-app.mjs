// An app on briefdb's built library whose one PostgreSQL connection is reset by a server that went
// away (test/frozen-database.test.ts cuts the proxy in front of it), with a statement sent between
// the socket's 'error' and its 'close' — postgres.js 3.4.9 never answers one sent there. Its own
// process: db.close() reads the TCP sockets of the whole process, and it must exit by itself once
// closed. Prints "ready" once the parent may cut, then one JSON line: what close() said and what
// the statement got. Usage: node lost-statement-app.mjs <url through the proxy>
import { Socket } from "node:net";
import { sql } from "drizzle-orm";
import { openDatabase } from "../../dist/index.js";

const url = String(process.argv[2]);
const db = await openDatabase(url, { poolSize: 1 });
await db.all(sql`SELECT 1`);
const port = Number(new URL(url).port);
// the pool's socket (postgres.js does not show it): the only TCP socket of this process to the proxy
const handles = /** @type {{ _getActiveHandles(): unknown[] }} */ (/** @type {unknown} */ (process))._getActiveHandles();
const sockets = handles.filter(/** @returns {handle is Socket} */ (handle) => handle instanceof Socket && handle.remotePort === port);
if (sockets.length !== 1) throw new Error(`expected one socket to port ${port}, found ${sockets.length}`);
/** @type {Promise<{ outcome: Promise<unknown> }>} */
const sent = new Promise((resolve) =>
  // after postgres.js's own listener, which found nothing to answer: the statement goes to that connection
  /** @type {Socket} */ (sockets[0]).once("error", () => resolve({ outcome: db.all(sql`SELECT 2`).then(() => "answered", (/** @type {any} */ error) => error?.code ?? error?.cause?.code ?? String(error)) })),
);
process.stdout.write("ready\n");
const { outcome } = await sent;
await db.close({ timeoutMs: 0 });
const statement = await outcome;
process.stdout.write(`${JSON.stringify({ closedCleanly: db.closedCleanly, statement })}\n`);
