/** `briefdb serve`: /healthz, /readyz and /metrics over HTTP as a sidecar, until SIGTERM or SIGINT. */
import { Command } from "commander";
import { isLoopbackHost } from "../db/target.js";
import { announce, progressLine, type Outcome } from "../render.js";
import { action } from "./context.js";
import { listenHost, wholeNumber } from "./parse.js";

/** From SIGTERM (or SIGINT) to exit, as the docs promise. */
const STOP_WITHIN_MS = 10_000;
/**
 * Of those, the database's close() keeps this much: what still runs on it once the server is closed
 * answers no scrape any more; and the 2 s close() may take past it to stop those statements.
 */
const DATABASE_CLOSE_MS = 1000;
const DATABASE_STOP_MS = 2000;

interface ServeOptions {
  readonly port: number;
  readonly host: string;
}

export function serveCommand(): Command {
  return new Command("serve")
    .description("serve /healthz (liveness), /readyz (readiness) and /metrics (Prometheus) over HTTP; stops cleanly on SIGTERM or SIGINT")
    .option("--port <n>", "port to listen on (0: any free port)", wholeNumber("--port", 0, 65535), 9464)
    .option("--host <address>", "address to listen on; loopback unless you say otherwise", listenHost, "127.0.0.1")
    .addHelpText(
      "after",
      `
Examples:
  $ briefdb serve                                  # http://127.0.0.1:9464/metrics
  $ briefdb --db postgres://me@db:5432/briefs serve --host 0.0.0.0 --port 9464
  $ briefdb serve --port 0 --json                  # one JSON object with the URL, for scripts

A port in use is exit 2. /readyz is 200 when the database is reachable and migrated, else 503.`,
    )
    .action(
      action(async (ctx, options: ServeOptions) => {
        // runCli owns SIGINT/SIGTERM: answered here, the first one stops the server cleanly (exit 0)
        const stop = ctx.answerSignals();
        const db = await ctx.open();
        const { startSidecar, SIDECAR_ROUTES } = await import("../core/health/sidecar.js");
        const sidecar = await startSidecar(db, {
          port: options.port,
          host: options.host,
          // scrapes in flight finish within what is left of the promise once the database has its share
          graceMs: STOP_WITHIN_MS - DATABASE_CLOSE_MS - DATABASE_STOP_MS,
        });
        const routes = SIDECAR_ROUTES.map((route) => `${sidecar.url}${route}`);
        if (!isLoopbackHost(options.host)) {
          // said on stderr (stdout keeps its one result): what is served here has no authentication
          progressLine(
            `warning: listening on ${options.host}, not loopback: anyone who can reach this port reads the health report (server version, migrations) and the metrics; put it on a private network or behind auth`,
          );
        }
        announce(ctx.ui, { url: sidecar.url, port: sidecar.port, routes, target: db.target.display }, `serving ${db.target.display} on ${routes.join(" ")} (Ctrl-C or SIGTERM stops)`);
        await untilAborted(stop);
        const deadline = Date.now() + STOP_WITHIN_MS;
        await sidecar.close();
        await ctx.close({ timeoutMs: Math.max(0, Math.min(DATABASE_CLOSE_MS, deadline - DATABASE_STOP_MS - Date.now())) });
        return stoppedOutcome(ctx.interruptedBy ?? "SIGTERM", sidecar.url);
      }),
    );
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

function stoppedOutcome(signal: string, url: string): Outcome {
  return {
    ok: true,
    announced: true,
    data: { url, stopped: signal },
    human: () => `stopped on ${signal}; the server and the database are closed`,
  };
}
