/**
 * Turns a database URL into a target: which dialect, where, whether it is local, and how to print
 * it without its password. Pure: nothing here opens a connection, so the local rule can refuse a
 * target before any network traffic.
 */
import { isIP } from "node:net";
import { resolve } from "node:path";
import { BriefdbError } from "../errors.js";

export const DEFAULT_URL = "file:./briefdb.db";

export type DialectName = "sqlite" | "postgresql";
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface SqliteTarget {
  readonly dialect: "sqlite";
  /** Absolute file path, or ":memory:". */
  readonly path: string;
  readonly display: string;
}

export interface PgTarget {
  readonly dialect: "postgresql";
  readonly host: string;
  readonly port: number;
  /** Directory of the Unix socket when the target is a socket (`?host=/path` or a path host). */
  readonly socketDir: string | undefined;
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
  readonly sslmode: SslMode;
  readonly display: string;
}

export type Target = SqliteTarget | PgTarget;

const SQLITE_SCHEMES = ["file:", "sqlite:"];
const PG_SCHEMES = ["postgres:", "postgresql:"];
const SSL_MODES: readonly SslMode[] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/** The URL the user asked for: `--db` first, then DATABASE_URL, then the local default file. */
export function chooseUrl(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit !== undefined) return explicit;
  const fromEnv = env.DATABASE_URL;
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_URL;
}

export function parseTarget(url: string): Target {
  const text = url.trim();
  if (text === "") throw invalidUrl("the database URL is empty");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]+):/.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return sqliteTarget(text);
  if (SQLITE_SCHEMES.includes(`${scheme}:`)) return sqliteTarget(stripSqliteScheme(text, scheme));
  if (PG_SCHEMES.includes(`${scheme}:`)) return pgTarget(text);
  throw invalidUrl(
    `unsupported database scheme "${scheme}:" in ${redactUrl(text)}`,
    "use file:PATH or sqlite:PATH for SQLite, postgres://… for PostgreSQL",
  );
}

function stripSqliteScheme(text: string, scheme: string): string {
  let rest = text.slice(scheme.length + 1);
  if (rest.startsWith("//")) rest = rest.slice(2);
  const query = rest.indexOf("?");
  if (query >= 0) rest = rest.slice(0, query);
  if (rest === "") throw invalidUrl(`no file path in ${text}`, "write file:./briefdb.db or a path");
  return decoded(rest, text);
}

/** A percent-decoded URL part; a broken escape (%ZZ) is INVALID_URL, not a crash. */
function decoded(part: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalidUrl(`malformed percent-escape in ${redactUrl(url)}`, "write a literal % as %25");
  }
}

function sqliteTarget(path: string): SqliteTarget {
  if (path === ":memory:") return { dialect: "sqlite", path, display: "sqlite::memory:" };
  const absolute = resolve(path);
  return { dialect: "sqlite", path: absolute, display: `file:${path}` };
}

function pgTarget(text: string): PgTarget {
  const url = parsePgUrl(text);
  const params = url.searchParams;
  // as libpq: ?host= wins over the URL's host, and a host that starts with "/" is the directory
  // of a Unix socket (also when percent-encoded in the URL: postgres://u@%2Fvar%2Frun%2Fpostgresql/db)
  const host = params.get("host") || decoded(url.hostname.replace(/^\[|\]$/g, ""), text) || "localhost";
  if (host.includes(",")) {
    throw invalidUrl(`several hosts in ${redactUrl(text)}`, "briefdb connects to one server: name one host");
  }
  const socketDir = host.startsWith("/") ? host : undefined;
  const port = url.port === "" ? Number(params.get("port") ?? 5432) : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidUrl(`bad port in ${redactUrl(text)}`);
  const database = decoded(url.pathname.replace(/^\//, ""), text) || params.get("dbname") || "postgres";
  if (database.includes("/")) throw invalidUrl(`bad database name in ${redactUrl(text)}`);
  const user = decoded(url.username, text) || params.get("user") || process.env.PGUSER || "postgres";
  const password = url.password !== "" ? decoded(url.password, text) : (params.get("password") ?? undefined);
  const sslmode = (params.get("sslmode") ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslmode)) {
    throw invalidUrl(`unknown sslmode "${sslmode}"`, `use one of ${SSL_MODES.join(", ")}`);
  }
  return { dialect: "postgresql", host, port, socketDir, database, user, password, sslmode, display: redactUrl(text) };
}

function parsePgUrl(text: string): URL {
  try {
    return new URL(text);
  } catch {
    // libpq takes an empty host after credentials (postgres://me:pw@/briefs?host=/run/postgresql);
    // WHATWG URL does not, so give it a placeholder host, which ?host= then replaces
    const withHost = text.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/i, "$1localhost");
    try {
      if (withHost !== text) return new URL(withHost);
    } catch {
      // fall through to the error below
    }
    throw invalidUrl(`malformed PostgreSQL URL: ${redactUrl(text)}`, "expected postgres://user:password@host:port/database");
  }
}

/** The URL with any password replaced by `***`, in the userinfo and in a `password=` parameter. */
export function redactUrl(url: string): string {
  const withoutParam = url.replace(/([?&]password=)[^&#]*/gi, "$1***");
  // the userinfo runs from after "scheme:" and any slashes (however many were typed) to the last "@"
  const start = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/*/.exec(withoutParam)?.[0].length ?? 0;
  const at = withoutParam.lastIndexOf("@");
  if (at < start) return withoutParam;
  const userinfo = withoutParam.slice(start, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return withoutParam;
  return `${withoutParam.slice(0, start)}${userinfo.slice(0, colon)}:***${withoutParam.slice(at)}`;
}

/**
 * The local rule (docs/architecture.md, "The local rule"): any SQLite database, PostgreSQL on loopback or a Unix socket, and
 * nothing at all while NODE_ENV=production.
 */
export function isLocalTarget(target: Target, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NODE_ENV === "production") return false;
  if (target.dialect === "sqlite") return true;
  if (target.socketDir !== undefined) return true;
  return isLoopbackHost(target.host);
}

export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (isIP(name) === 4) return name.startsWith("127.");
  if (isIP(name) === 6) return name === "::1" || name === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(name);
  return false;
}

/** Whether separate connections to the target see one database (not so for SQLite's :memory:). */
export function isSharedTarget(target: Target): boolean {
  return !(target.dialect === "sqlite" && target.path === ":memory:");
}

/** Throws NOT_LOCAL unless the target passes the local rule. Call it before connecting. */
export function assertLocalTarget(target: Target, what: string, env: NodeJS.ProcessEnv = process.env): void {
  if (isLocalTarget(target, env)) return;
  const why = env.NODE_ENV === "production" ? "NODE_ENV=production" : "the host is not local";
  throw new BriefdbError(
    "NOT_LOCAL",
    `${what} runs on local databases only; refused ${target.display} (${why})`,
    "point --db at a SQLite file or a PostgreSQL server on localhost",
  );
}

function invalidUrl(message: string, hint?: string): BriefdbError {
  return new BriefdbError("INVALID_URL", message, hint);
}
