/**
 * An old primary back after a failover, not fenced (issue 21, hostile review): two servers of the
 * URL's list take writes. briefdb, as libpq, writes to the first of the list that answers as a
 * primary, which may be the old one, its ledger parted from the new primary's; `health` on the
 * list asks every listed server its role and makes two primaries a problem (unhealthy, exit 1;
 * serve's /readyz 503), where it reported the old primary healthy.
 */
import { createServer, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthHandler, openDatabase } from "../src/index.js";
import { startReplicaSet, type ReplicaSet } from "../harness/replica-set.mjs";
import { cli } from "./support/databases.js";

describe("two primaries in the URL's list (a split brain)", () => {
  let set: ReplicaSet;
  let twoHosts: string;

  beforeAll(async () => {
    // asynchronous: the old primary, back, commits without waiting for a standby that is gone
    set = await startReplicaSet({ password: "split-pw", synchronous: false });
    twoHosts = await set.createDatabase("briefs");
    expect((await cli(["migrate", "--db", twoHosts])).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await set?.stop();
  });

  it("health names the split brain as a problem, exit 1; one primary again, healthy", async () => {
    const [a, b] = set.nodes;
    const before = await cli(["health", "--db", twoHosts, "--json"]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.json?.problems).toEqual([]);

    await set.kill(a!);
    await set.promote(b!);
    await set.start(a!);
    const split = await cli(["health", "--db", twoHosts, "--json"]);
    expect(split.code, split.stdout).toBe(1);
    expect(split.json).toMatchObject({ healthy: false, role: "primary", server: `127.0.0.1:${a!.port}` });
    expect(split.json?.problems).toEqual([expect.stringMatching(new RegExp(`^split brain: 127\\.0\\.0\\.1:${a!.port} and 127\\.0\\.0\\.1:${b!.port} both take writes`))]);
    expect(split.stdout).not.toContain("split-pw");
    const text = await cli(["health", "--db", twoHosts]);
    expect(text.code).toBe(1);
    expect(text.stdout + text.stderr).toMatch(/split brain/);

    await set.kill(a!);
    const after = await cli(["health", "--db", twoHosts, "--json"]);
    expect(after.code, after.stdout).toBe(0);
    expect(after.json).toMatchObject({ healthy: true, role: "primary", server: `127.0.0.1:${b!.port}` });
  });

  it("a listed server that never answers is no split brain: the primary stays ready", async () => {
    // node b is the primary alone now; a frozen machine listed after it
    const sockets = new Set<Socket>();
    const frozen = createServer((socket) => (sockets.add(socket), socket.on("data", () => {})));
    await new Promise<void>((resolve) => frozen.listen(0, "127.0.0.1", resolve));
    const url = twoHosts.replace(/,127\.0\.0\.1:\d+\//, `,127.0.0.1:${(frozen.address() as AddressInfo).port}/`).replace(/@127\.0\.0\.1:\d+,/, `@127.0.0.1:${set.nodes[1]!.port},`);
    const db = await openDatabase(url, { timeoutMs: 2000 });
    try {
      const response = await healthHandler(db, { require: "primary", timeoutMs: 10_000 })(new Request("http://localhost/readyz"));
      const body = (await response.json()) as { problems: string[] };
      expect(response.status, JSON.stringify(body)).toBe(200);
      expect(body.problems).toEqual([]);
    } finally {
      await db.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => frozen.close(resolve));
    }
  });
});
