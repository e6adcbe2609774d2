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
    ["postgres://me:pw@db.example.invalid/b", false],
    ["postgres://me:pw@10.0.0.5/b", false],
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
  ])("redacts %s", (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it("takes the libpq sslmodes and refuses others", () => {
    expect(parseTarget("postgres://h/db?sslmode=verify-full")).toMatchObject({ sslmode: "verify-full" });
    expect(parseTarget("postgres://h/db")).toMatchObject({ sslmode: "prefer" });
    expect(() => parseTarget("postgres://h/db?sslmode=maybe")).toThrow(/unknown sslmode/);
  });
});
