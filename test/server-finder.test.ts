/**
 * The server finder against servers that misbehave (issue 21, hostile review): a listed server that
 * takes the connection and never answers, or answers something that is not PostgreSQL, must not
 * keep a host list from the servers after it, and however many such servers a list names, a call
 * ends within the connect timeout (libpq gives each host its connect_timeout; briefdb's documented
 * bound is the timeout for the whole list).
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { cli, freshDatabase } from "./support/databases.js";

/** Loopback servers that accept a connection and then misbehave; their ports. */
async function listeners(count: number, behave: (socket: Socket) => void): Promise<{ ports: number[]; close: () => Promise<void> }> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  for (let i = 0; i < count; i += 1) {
    const server = createServer((socket) => (sockets.add(socket), behave(socket)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
  }
  return {
    ports: servers.map((server) => (server.address() as AddressInfo).port),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      for (const server of servers) await new Promise((resolve) => server.close(resolve));
    },
  };
}

const silent = (socket: Socket) => socket.on("data", () => {});
const garbage = (socket: Socket) => socket.on("data", () => socket.write("HTTP/1.1 400 Bad Request\r\n\r\n"));

describe("postgresql: a host list with a server that misbehaves", () => {
  let url: URL;
  beforeAll(async () => {
    url = new URL(await freshDatabase("postgresql"));
    expect((await cli(["migrate", "--db", url.toString()])).code).toBe(0);
  });

  /** The database's URL with `ports` (loopback) listed before its own server. */
  function listedFirst(ports: readonly number[], query = ""): string {
    const before = ports.map((port) => `127.0.0.1:${port},`).join("");
    return `postgres://${url.username}:${url.password}@${before}${url.host}${url.pathname}${query}`;
  }

  for (const [name, behave] of [["never answers", silent], ["answers something else than PostgreSQL", garbage]] as const) {
    it(`without target_session_attrs (any), a first server that ${name} is passed over for the next`, async () => {
      const bad = await listeners(1, behave);
      try {
        const result = await cli(["tokens", "verify", "--db", listedFirst(bad.ports), "--timeout", "2000", "--json"]);
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
        expect(result.json).toMatchObject({ ok: true });
      } finally {
        await bad.close();
      }
    });
  }

  it("forty servers that never answer, then none that fits: DB_UNREACHABLE within the connect timeout, not a share of it each", async () => {
    const bad = await listeners(40, silent);
    try {
      const dead = `postgres://${url.username}:${url.password}@${bad.ports.map((port) => `127.0.0.1:${port}`).join(",")}${url.pathname}?target_session_attrs=read-write`;
      // before: each server was given at least 500 ms, past the timeout too (20 s for forty);
      // killed at 12 s, the call would not have ended
      const result = await cli(["tokens", "balance", "nobody", "--db", dead, "--timeout", "1000", "--json"], { timeoutMs: 12_000 });
      expect(result.code, result.stderr).toBe(1);
      expect(result.json).toMatchObject({ ok: false, error: { code: "DB_UNREACHABLE" } });
      expect(result.stderr).not.toContain(url.password);
    } finally {
      await bad.close();
    }
  });
});

describe("postgresql: a server that answers an error with no code (not PostgreSQL)", () => {
  it("is a connection failure of the server's, not INTERNAL ('a bug in briefdb')", async () => {
    // an ErrorResponse ('E') with no fields at all: postgres.js makes it a PostgresError with no code
    const bad = await listeners(1, (socket) => socket.on("data", () => socket.write(Buffer.from([0x45, 0, 0, 0, 4]))));
    try {
      const result = await cli(["tokens", "balance", "nobody", "--db", `postgres://u:secret@127.0.0.1:${bad.ports[0]}/db`, "--timeout", "2000", "--json"]);
      expect(result.code, result.stderr).toBe(1);
      expect(result.json?.error?.code).toBe("DB_UNREACHABLE");
      expect(result.stderr).not.toMatch(/bug in briefdb|\n\s+at /);
    } finally {
      await bad.close();
    }
  });
});
