import { describe, expect, it } from "vitest";
import { isLocalTarget, parseTarget, redactUrl } from "../src/index.js";

describe("database URLs", () => {
  it.each([
    ["postgres://me:pw@/briefs?host=/var/run/postgresql", "/var/run/postgresql", 5432, "briefs"],
    ["postgres:///briefs?host=/tmp&port=5433", "/tmp", 5433, "briefs"],
    ["postgresql://me@%2Fvar%2Frun%2Fpostgresql/briefs", "/var/run/postgresql", 5432, "briefs"],
  ])("%s is a Unix socket, and local", (url, socketDir, port, database) => {
    const target = parseTarget(url);
    expect(target).toMatchObject({ dialect: "postgresql", socketDir, port, database });
    expect(isLocalTarget(target, {})).toBe(true);
  });

  it.each([
    ["postgres://me:pw@localhost/b", true],
    ["postgres://me:pw@127.0.0.9:6543/b", true],
    ["postgres://me:pw@[::1]/b", true],
    ["postgres://me:pw@[::ffff:127.0.0.1]/b", true],
    ["postgres://me:pw@[::ffff:10.0.0.1]/b", false],
    ["postgres://me:pw@db.example.invalid/b", false],
    ["postgres://me:pw@10.0.0.5/b", false],
    // only the name localhost itself is answered from the hosts file; these may go to DNS
    ["postgres://me:pw@prod-db.localhost/b", false],
    ["postgres://me:pw@localhost./b", false],
    ["postgres://me:pw@127.1/b", true],
    ["postgres://me:pw@0x7f.0.0.1/b", true],
    // a trailing dot goes to DNS (glibc), whatever the URL parser makes of it
    ["postgres://me:pw@127.1./b", false],
    ["postgres://me:pw@127.0.0.1./b", false],
    ["postgres://me:pw@0x7f.1./b", false],
    ["postgres://me:pw@db.example.invalid/b?host=127.0.0.1", true],
    ["file:./x.db", true],
    ["./x.db", true],
    [":memory:", true],
  ])("%s local: %s", (url, local) => {
    expect(isLocalTarget(parseTarget(url), {})).toBe(local);
    expect(isLocalTarget(parseTarget(url), { NODE_ENV: "production" })).toBe(false);
  });

  it.each([
    ["postgres://me:s3cret@host/db", "postgres://me:***@host/db"],
    ["postgres://me:p@ss@word@host/db", "postgres://me:***@host/db"],
    ["postgres://me@host/db?password=s3cret&sslmode=require", "postgres://me@host/db?password=***&sslmode=require"],
    ["postgres://me@host/db", "postgres://me@host/db"],
    // cut before its "@" (an unquoted # in .env): what cannot be a port is a secret
    ["postgres://me:ab", "postgres://me:***"],
    ["postgres://me:ab/x", "postgres://me:***/x"],
    ["postgres://host:5432/db", "postgres://host:5432/db"],
    ["postgres://[::1]:5432/db", "postgres://[::1]:5432/db"],
    ["postgres://h1:5432,h2:5433/db", "postgres://h1:5432,h2:5433/db"],
  ])("redacts %s", (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it("reads the URL as libpq does: query keywords win over the URL's parts", () => {
    expect(parseTarget("postgres://u@h:5432/db?port=6000&user=v&password=pw&dbname=other")).toMatchObject({
      host: "h",
      port: 6000,
      user: "v",
      password: "pw",
      database: "other",
    });
    expect(parseTarget("postgresql://me@%2Fvar%2Frun/briefs?host=/tmp")).toMatchObject({ socketDir: "/tmp", database: "briefs" });
  });

  it.each([
    ["postgres://me:pw@?host=/tmp", { socketDir: "/tmp", user: "me", password: "pw", database: "postgres" }],
    ["postgres://me:pw@", { host: "localhost", user: "me", database: "postgres" }],
    ["postgres://h/my%23db%3F", { database: "my#db?" }],
    ["postgres://me:p%40ss@[::1]:6543/db#frag", { host: "::1", port: 6543, password: "p@ss", database: "db" }],
    ["POSTGRESQL://H/db", { host: "H", database: "db" }],
    ["postgres://h/db", { password: undefined, port: 5432 }],
  ])("parses %s", (url, expected) => {
    expect(parseTarget(url)).toMatchObject(expected);
  });

  it.each([
    ["postgres:/u:pw@h/db", /malformed PostgreSQL URL/],
    ["postgres:u:pw@h/db", /malformed PostgreSQL URL/],
    ["postgres://u:pw@local host/db", /malformed PostgreSQL URL/],
    ["postgres://u:pw@h:99999/db", /malformed PostgreSQL URL/],
    ["postgres://u:pw@h/db?port=0", /bad port/],
    ["postgres://u:pw@h/db?port=x", /bad port/],
    ["postgres://u:p%ZZw@h/db", /malformed percent-escape/],
    ["postgres://u:pw@h/d%2", /malformed percent-escape/],
    ["postgres://u:pw@a.example.invalid,a.example.invalid/db", /a\.example\.invalid:5432 is listed twice/],
    ["postgres://u:pw@a.example.invalid:5433,A.example.invalid:5433/db", /listed twice/],
    // one server spelled two ways is still one server
    ["postgres://u:pw@127.0.0.1:5433,127.1:5433/db", /127\.1:5433 is listed twice/],
    ["postgres://u:pw@127.0.0.1,0x7f.0.0.1/db", /listed twice/],
    ["postgres://u:pw@[::1]:5433,[0:0:0:0:0:0:0:1]:5433/db", /listed twice/],
    ["postgres://u:pw@[2001:db8::1],[2001:DB8:0::1]/db", /listed twice/],
    ["postgres://u:pw@a.example.invalid,b.example.invalid/db?target_session_attrs=master", /unknown target_session_attrs "master"/],
    ["postgres://u:pw@a.example.invalid,b.example.invalid/db?port=1,2,3", /3 ports for 2 hosts/],
    ["postgres://u:pw@a:1,b:2,c:3/db?host=a.example.invalid,b.example.invalid", /3 ports for 2 hosts/],
    ["postgres://u:pw@a.example.invalid,,b.example.invalid/db", /an empty host/],
    ["postgres://u:pw@a.example.invalid:x,b.example.invalid/db", /bad port "x"/],
    ["postgres://u:pw@/db?host=/tmp/a,/tmp/b", /a Unix socket in the host list/],
    ["postgres://u:pw@h/a/b", /bad database name/],
    // libpq would connect to hostaddr; postgres.js to the host: refused rather than connect elsewhere
    ["postgres://u:pw@localhost/db?hostaddr=10.0.0.5", /hostaddr is not supported/],
  ])("%s is INVALID_URL, the password redacted", (url, message) => {
    let caught: unknown;
    try {
      parseTarget(url);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: "INVALID_URL" });
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toMatch(/pw|p%ZZw/);
  });

  it.each([
    ["postgres://u:pw@h1:5432,h2:5433/briefs?target_session_attrs=read-write", [["h1", 5432], ["h2", 5433]], "read-write"],
    ["postgres://u:pw@h1,h2/briefs", [["h1", 5432], ["h2", 5432]], "any"],
    ["postgres://u:pw@[::1]:5432,127.0.0.1:5433/briefs?target_session_attrs=primary", [["::1", 5432], ["127.0.0.1", 5433]], "primary"],
    // as libpq, ?host= wins over the authority's hosts; ?port= gives one port for all, or one each
    ["postgres://u:pw@ignored/briefs?host=h1,h2&port=6000", [["h1", 6000], ["h2", 6000]], "any"],
    ["postgres://u:pw@ignored/briefs?host=h1,h2&port=6000,6001&target_session_attrs=prefer-standby", [["h1", 6000], ["h2", 6001]], "prefer-standby"],
    // ?host= replaces the hosts only: the authority's ports stay, as libpq keeps them (?port= wins)
    ["postgres://u:pw@a:5433,b:5434/briefs?host=h1,h2", [["h1", 5433], ["h2", 5434]], "any"],
    ["postgres://u:pw@a:6000/briefs?host=h1,h2", [["h1", 6000], ["h2", 6000]], "any"],
    ["postgres://u:pw@a:5433,b:5434/briefs?host=h1,h2&port=7000", [["h1", 7000], ["h2", 7000]], "any"],
  ])("a host list: %s", (url, hosts, attrs) => {
    const target = parseTarget(url);
    expect(target).toMatchObject({ dialect: "postgresql", host: hosts[0]![0], port: hosts[0]![1], targetSessionAttrs: attrs, user: "u", password: "pw", database: "briefs" });
    expect((target as { hosts: unknown }).hosts).toEqual(hosts.map(([host, port]) => ({ host, port })));
    expect(target.display).not.toContain("pw");
  });

  it("target_session_attrs from PGTARGETSESSIONATTRS when the URL has none; the URL's wins", () => {
    const saved = process.env.PGTARGETSESSIONATTRS;
    process.env.PGTARGETSESSIONATTRS = "read-write";
    try {
      expect(parseTarget("postgres://h1,h2/db")).toMatchObject({ targetSessionAttrs: "read-write" });
      expect(parseTarget("postgres://h1,h2/db?target_session_attrs=any")).toMatchObject({ targetSessionAttrs: "any" });
      process.env.PGTARGETSESSIONATTRS = "sometimes";
      expect(() => parseTarget("postgres://h1,h2/db")).toThrow(/unknown target_session_attrs "sometimes"/);
    } finally {
      if (saved === undefined) delete process.env.PGTARGETSESSIONATTRS;
      else process.env.PGTARGETSESSIONATTRS = saved;
    }
  });

  it("a host list is local only when every host is", () => {
    expect(isLocalTarget(parseTarget("postgres://u:pw@127.0.0.1:5432,[::1]:5433/db"), {})).toBe(true);
    expect(isLocalTarget(parseTarget("postgres://u:pw@127.0.0.1:5432,db.example.invalid:5433/db"), {})).toBe(false);
    expect(isLocalTarget(parseTarget("postgres://u:pw@db.example.invalid,localhost/db"), {})).toBe(false);
    expect(isLocalTarget(parseTarget("postgres://u:pw@localhost/db?host=127.0.0.1,db.example.invalid"), {})).toBe(false);
  });

  it("ssl parameters are read, not acted on: no certificate file is opened and no warning printed", () => {
    const warnings: unknown[] = [];
    const emitWarning = process.emitWarning;
    process.emitWarning = (warning: string | Error) => void warnings.push(warning);
    try {
      const target = parseTarget("postgres://h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem&sslcert=/nonexistent/c.pem");
      expect(target).toMatchObject({ sslmode: "require" });
      expect(parseTarget("postgres://h/db?sslmode=verify-ca")).toMatchObject({ sslmode: "verify-ca" });
    } finally {
      process.emitWarning = emitWarning;
    }
    expect(warnings).toEqual([]);
  });

  it("takes the libpq sslmodes and refuses others", () => {
    expect(parseTarget("postgres://h/db?sslmode=verify-full")).toMatchObject({ sslmode: "verify-full" });
    expect(parseTarget("postgres://h/db")).toMatchObject({ sslmode: "prefer" });
    expect(() => parseTarget("postgres://h/db?sslmode=maybe")).toThrow(/unknown sslmode/);
  });
});
