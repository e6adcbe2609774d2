/**
 * A TCP proxy on loopback in front of the test PostgreSQL server that can freeze: from `freeze()`
 * on it forwards nothing either way, and never closes a socket (a FIN is not passed on either); a
 * new connection is accepted and held, never answered — what a server stopped with SIGSTOP, or a
 * network that drops every packet, looks like from the client. `cut()` is a server that went away
 * instead: every connection reset, new ones refused. `close()` ends it all.
 */
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface FrozenProxy {
  /** The database URL with its host and port replaced by the proxy's. */
  readonly url: string;
  freeze(): void;
  cut(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(databaseUrl: string): Promise<FrozenProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    sockets.add(client);
    client.on("error", () => {});
    if (frozen) return;
    const upstream = connect({ host: target.hostname, port: Number(target.port), allowHalfOpen: true });
    sockets.add(upstream);
    upstream.on("error", () => {});
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on("data", (chunk) => frozen || to.write(chunk));
      from.on("end", () => frozen || to.end());
    }
    client.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const proxied = new URL(databaseUrl);
  proxied.hostname = "127.0.0.1";
  proxied.port = String((server.address() as AddressInfo).port);
  return {
    url: proxied.toString(),
    freeze() {
      frozen = true;
      for (const socket of sockets) socket.pause();
    },
    cut() {
      server.close();
      for (const socket of sockets) socket.resetAndDestroy();
    },
    async close() {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
