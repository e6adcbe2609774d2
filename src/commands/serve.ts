/** `briefdb serve`: the live dashboard at /, and /healthz, /readyz and /metrics over HTTP as a sidecar, until SIGTERM or SIGINT. */
import { Command } from "commander";
import { withDeadline } from "../core/health/deadline.js";
import { parseRoleRequirement, type RoleRequirement } from "../core/health/replication.js";
import { BriefdbError } from "../errors.js";
import { isLoopbackHost } from "../db/target.js";
import { announce, progressLine, type Outcome } from "../render.js";
import { action } from "./context.js";
import { listenHost, wholeNumber } from "./parse.js";

/** From SIGTERM (or SIGINT) to exit, as the docs promise. */
const STOP_WITHIN_MS = 10_000;
/**
 * Of those, the database's close() keeps this much: what still runs on it once the server is closed
 * answers no scrape any more; and the 3 s close() may take past it to stop those statements (2 s)
 * and to see its connections closed by the server (1 s).
 */
const DATABASE_CLOSE_MS = 1000;
const DATABASE_STOP_MS = 3000;

interface ServeOptions {
  readonly port: number;
  readonly host: string;
  readonly token?: string;
  readonly require?: RoleRequirement;
}

/** Shorter tokens can be guessed by anyone who can reach the port. */
const MIN_TOKEN_LENGTH = 16;

export function serveCommand(): Command {
  return new Command("serve")
    .description("serve the live dashboard at /, and /healthz (liveness), /readyz (readiness) and /metrics (Prometheus) over HTTP; stops cleanly on SIGTERM or SIGINT")
    .option("--port <n>", "port to listen on (0: any free port)", wholeNumber("--port", 0, 65535), 9464)
    .option("--host <address>", "address to listen on; loopback unless you say otherwise", listenHost, "127.0.0.1")
    .option("--require <role>", "/readyz is 503 unless the server is this: primary, standby, or sync (a primary with a synchronous standby)", parseRoleRequirement)
    .option("--token <secret>", "the dashboard's API wants it (Authorization: Bearer); needed to serve the dashboard beyond loopback (or BRIEFDB_SERVE_TOKEN)")
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb serve                                  # the dashboard at http://127.0.0.1:9464/
  $ briefdb --db postgres://me@db:5432/briefs serve --host 0.0.0.0 --port 9464
  $ briefdb serve --port 0 --json                  # one JSON object with the URL, for scripts

A port in use is exit 2. /readyz is 200 when the database is reachable and migrated (and, with
--require primary, the server takes writes), else 503.
SIGTERM or Ctrl-C stops it within 10 s: exit 0, or 1 (DB_UNREACHABLE) when the database does not
even let its connection be closed (a server frozen mid-TCP).
Beyond loopback the dashboard is served only with a token (--token or BRIEFDB_SERVE_TOKEN, at
least ${MIN_TOKEN_LENGTH} characters); its JSON endpoints are in docs/dashboard.md.`,
    )
    .action(
      action(async (ctx, options: ServeOptions) => {
        // runCli owns SIGINT/SIGTERM: answered here, the first one stops the server cleanly (exit 0)
        const token = dashboardToken(options.token);
        const loopback = isLoopbackHost(options.host);
        const stop = ctx.answerSignals({ changesData: false });
        const db = await ctx.open();
        const { startSidecar, SIDECAR_ROUTES } = await import("../core/health/sidecar.js");
        const dashboardOn = loopback || token !== undefined;
        const dashboard = dashboardOn
          ? { ...(token === undefined ? {} : { token }) }
          : { refuse: "the dashboard is off: serve listens beyond loopback without a token (start it with --token or BRIEFDB_SERVE_TOKEN)" };
        const sidecar = await startSidecar(db, {
          port: options.port,
          host: options.host,
          dashboard,
          ...(options.require === undefined ? {} : { require: options.require }),
          // scrapes in flight finish within what is left of the promise once the database has its share
          graceMs: STOP_WITHIN_MS - DATABASE_CLOSE_MS - DATABASE_STOP_MS,
        });
        const routes = SIDECAR_ROUTES.map((route) => `${sidecar.url}${route}`);
        if (!loopback) {
          // said on stderr (stdout keeps its one result): what is served here has no authentication
          const dashboardNote = dashboardOn
            ? "the dashboard at / wants the token"
            : "the dashboard at / is off (give --token or BRIEFDB_SERVE_TOKEN to serve it)";
          progressLine(
            `warning: listening on ${options.host}, not loopback: anyone who can reach this port reads the health report (server version, migrations) and the metrics; put it on a private network or behind auth; ${dashboardNote}`,
          );
        }
        const dashboardUrl = dashboardOn ? `${sidecar.url}/` : null;
        const shown = dashboardUrl === null ? "" : `the dashboard at ${dashboardUrl}${token === undefined ? "" : " (token required)"}, and `;
        announce(
          ctx.ui,
          { url: sidecar.url, port: sidecar.port, routes, dashboard: dashboardUrl, tokenRequired: token !== undefined, target: db.target.display },
          `serving ${db.target.display}: ${shown}${routes.join(" ")} (Ctrl-C or SIGTERM stops)`,
        );
        await untilAborted(stop);
        const deadline = Date.now() + STOP_WITHIN_MS;
        await sidecar.close();
        const closing = ctx.close({ timeoutMs: Math.max(0, Math.min(DATABASE_CLOSE_MS, deadline - DATABASE_STOP_MS - Date.now())) });
        // whatever the server does, the budget holds: a close still waiting at the deadline is abandoned
        const closed = (await withDeadline(closing, Math.max(0, deadline - Date.now()))) === true;
        if (!closed) ctx.abandonedConnection = true;
        return stoppedOutcome(ctx.interruptedBy ?? "SIGTERM", sidecar.url, closed ? undefined : db.target.display);
      }),
    );
}

/** --token, else BRIEFDB_SERVE_TOKEN; checked before anything connects. */
function dashboardToken(flag: string | undefined): string | undefined {
  const token = flag ?? (process.env.BRIEFDB_SERVE_TOKEN || undefined);
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new BriefdbError("USAGE", `the serve token is ${token.length} characters; it needs at least ${MIN_TOKEN_LENGTH}`, "make one with: openssl rand -hex 24");
  }
  return token;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** `abandoned`: the target whose connection could not be closed in time (exit 1), if any. */
function stoppedOutcome(signal: string, url: string, abandoned?: string): Outcome {
  if (abandoned === undefined) {
    return {
      ok: true,
      announced: true,
      data: { url, stopped: signal, databaseClosed: true },
      human: () => `stopped on ${signal}; the server and the database are closed`,
    };
  }
  const error = new BriefdbError(
    "DB_UNREACHABLE",
    `stopped on ${signal}: the server is closed, but the connection to ${abandoned} could not be closed in time (the database stopped answering); exiting without it`,
    "look at the database server: stopped, frozen, or behind a network that drops packets",
  );
  return {
    ok: false,
    error,
    announced: true,
    data: { url, stopped: signal, databaseClosed: false },
    human: () => `stopped on ${signal}; the server is closed; the database connection could not be closed in time`,
  };
}
