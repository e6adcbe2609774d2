/**
 * Turns a database URL into a target: which dialect, where, whether it is local, and how to print
 * it without its password. Pure: nothing here opens a connection, so the local rule can refuse a
 * target before any network traffic.
 */
import { isIP } from "node:net";
import { resolve } from "node:path";
import { parse as parseConnectionString, type ConnectionOptions } from "pg-connection-string";
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

/** libpq's target_session_attrs: which server of a host list a connection settles on. */
export type TargetSessionAttrs = "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby";

export interface PgHost {
  readonly host: string;
  readonly port: number;
}

export interface PgTarget {
  readonly dialect: "postgresql";
  /** The first host of `hosts` (the only one, in a one-server URL). */
  readonly host: string;
  readonly port: number;
  /**
   * Every server the URL lists, tried in order until one fits `targetSessionAttrs` (libpq's
   * multi-host URL: postgres://h1:5432,h2:5433/briefs). One element for a one-server URL.
   */
  readonly hosts: readonly PgHost[];
  /** From `?target_session_attrs=`, else PGTARGETSESSIONATTRS, else "any". */
  readonly targetSessionAttrs: TargetSessionAttrs;
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
const SESSION_ATTRS: readonly TargetSessionAttrs[] = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"];

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
  if (rest.startsWith("//")) {
    rest = rest.slice(2);
    // a SQLite file has no user or password: "sqlite://me:pw@host/x.db" is a server URL in disguise
    const at = rest.indexOf("@");
    if (at >= 0 && (rest.indexOf("/") < 0 || at < rest.indexOf("/"))) {
      throw invalidUrl(`a SQLite URL names a file, not a user or password: ${redactUrl(text)}`, "write file:./briefdb.db or a path");
    }
  }
  const query = rest.indexOf("?");
  if (query >= 0) rest = rest.slice(0, query);
  if (rest === "") throw invalidUrl(`no file path in ${redactUrl(text)}`, "write file:./briefdb.db or a path");
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

/**
 * A PostgreSQL URL, read as libpq reads it. node-postgres's `pg-connection-string` parses the
 * authority (user, password, host, port; IPv6 brackets; a percent-encoded socket directory; an
 * empty host after the credentials) and lets `?host=`, `?port=`, `?user=`, `?password=` win over
 * it. Around it, ours:
 * - the shape (`postgres[ql]://`) and percent-escapes are checked first: the library re-encodes a
 *   broken escape or a space into a literal and carries on, libpq refuses them;
 * - the database comes from the path (fully decoded, as libpq; the library leaves %23 and the like
 *   encoded) unless `?dbname=` names one, and sslmode from the query: the library's parse turns ssl
 *   parameters into node-postgres TLS options, reading certificate files and printing a process
 *   warning for some sslmodes, so it is handed only the four keywords above.
 */
function pgTarget(text: string): PgTarget {
  const parts = PG_URL_SHAPE.exec(text);
  if (parts === null) throw malformedPgUrl(text);
  if (/%(?![0-9a-fA-F]{2})/.test(text)) {
    throw invalidUrl(`malformed percent-escape in ${redactUrl(text)}`, "write a literal % as %25");
  }
  const [, scheme, authority = "", path = "", query = ""] = parts;
  if (/\s/.test(authority)) throw malformedPgUrl(text);
  const params = new URLSearchParams(query);
  // libpq connects to hostaddr and uses host only for TLS and passwords; postgres.js has no such
  // thing, so briefdb would connect somewhere else than libpq (and judge the local rule by a name)
  if (params.has("hostaddr")) {
    throw invalidUrl(`hostaddr is not supported (in ${redactUrl(text)})`, "name the server's address as the host: postgres://user@10.0.0.5:5432/db");
  }
  // a host list (h1:5432,h2:5433) is read here, host by host; the library reads one server only
  const hostList = hostListOf(authority, params, text);
  const forLibrary = new URLSearchParams([...params].filter(([keyword]) => LIBRARY_KEYWORDS.includes(keyword) && (hostList === undefined || keyword === "user" || keyword === "password")));
  const config = parseAuthority(`${scheme}://${hostList === undefined ? authority : `${authority.slice(0, authority.lastIndexOf("@") + 1)}localhost`}/?${forLibrary}`, text);

  // as libpq: a host that starts with "/" is the directory of a Unix socket
  const host = hostList?.[0]?.host ?? (config.host || "localhost");
  if (hostList === undefined && host.includes(",")) throw malformedPgUrl(text);
  const socketDir = hostList === undefined && host.startsWith("/") ? host : undefined;
  const port = hostList?.[0]?.port ?? (config.port ? Number(config.port) : 5432);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidUrl(`bad port in ${redactUrl(text)}`);
  const hosts = hostList ?? [{ host, port }];
  const targetSessionAttrs = (params.get("target_session_attrs") ?? (process.env.PGTARGETSESSIONATTRS || "any")) as TargetSessionAttrs;
  if (!SESSION_ATTRS.includes(targetSessionAttrs)) {
    throw invalidUrl(`unknown target_session_attrs "${targetSessionAttrs}" in ${redactUrl(text)}`, `use one of ${SESSION_ATTRS.join(", ")}`);
  }
  const database = params.get("dbname") || decoded(path.replace(/^\//, ""), text) || "postgres";
  if (database.includes("/")) throw invalidUrl(`bad database name in ${redactUrl(text)}`);
  const user = config.user || process.env.PGUSER || "postgres";
  const password = config.password || undefined;
  const sslmode = (params.get("sslmode") ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslmode)) {
    throw invalidUrl(`unknown sslmode "${sslmode}"`, `use one of ${SSL_MODES.join(", ")}`);
  }
  return { dialect: "postgresql", host, port, hosts, targetSessionAttrs, socketDir, database, user, password, sslmode, display: redactUrl(text) };
}

/**
 * The servers of a URL that lists several, as libpq reads them: `h1:5432,h2:5433` in the
 * authority, or `?host=h1,h2` (which wins over the authority's, as every query keyword does) with
 * `?port=` giving one port for all or one per host. Undefined for a one-server URL. Each host is
 * named once (a repeat is a mistake in a list meant to survive a failover); a list names TCP
 * servers, not Unix sockets.
 */
function hostListOf(authority: string, params: URLSearchParams, text: string): PgHost[] | undefined {
  const hostPart = authority.slice(authority.lastIndexOf("@") + 1);
  const fromQuery = params.get("host");
  const listed = fromQuery ?? hostPart;
  if (!listed.includes(",")) return undefined;
  const entries = fromQuery === null ? splitHosts(listed, text) : listed.split(",").map((host) => ({ host: host.trim(), port: undefined }));
  // ?host= replaces the authority's hosts, not its ports: libpq keeps those (a:5433,b:5434 with
  // ?host=h1,h2 is h1:5433,h2:5434), and ?port= wins over them
  const authorityPorts = fromQuery === null ? undefined : splitHosts(hostPart, text).map((entry) => entry.port);
  const queryPorts = params.get("port")?.split(",").map((port) => port.trim()) ?? (authorityPorts?.some((port) => port !== undefined) ? authorityPorts : undefined);
  if (queryPorts !== undefined && queryPorts.length !== 1 && queryPorts.length !== entries.length) {
    throw invalidUrl(`${queryPorts.length} ports for ${entries.length} hosts in ${redactUrl(text)}`, "give one port for every host, or one port for all");
  }
  const hosts = entries.map((entry, i) => {
    if (entry.host === "") throw invalidUrl(`an empty host in the host list of ${redactUrl(text)}`);
    if (entry.host.startsWith("/")) throw invalidUrl(`a Unix socket in the host list of ${redactUrl(text)}`, "a host list names TCP servers (host:port,host:port)");
    const portText = queryPorts?.[queryPorts.length === 1 ? 0 : i] ?? entry.port ?? "5432";
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw invalidUrl(`bad port "${portText}" in ${redactUrl(text)}`);
    return { host: decoded(entry.host, text), port };
  });
  const seen = new Set<string>();
  for (const { host, port } of hosts) {
    const key = `${sameServerKey(host)}:${port}`;
    if (seen.has(key)) throw invalidUrl(`${host}:${port} is listed twice in ${redactUrl(text)}`, "name each server once");
    seen.add(key);
  }
  return hosts;
}

/**
 * A host as it names a server, for telling a repeat: an IP address in its one canonical form
 * (127.1 and 127.0.0.1, [0:0:0:0:0:0:0:1] and [::1] are one server, as the resolver reads them),
 * a name in lower case.
 */
function sameServerKey(host: string): string {
  if (isIP(host) === 6) return urlHostname(`[${host}]`) ?? host.toLowerCase();
  // as isLoopbackHost: only what can spell an IPv4 address, and no trailing dot (a DNS name then)
  if (/^[0-9a-fx.]+$/i.test(host) && !host.endsWith(".")) {
    const written = urlHostname(host);
    if (written !== undefined && isIP(written) === 4) return written;
  }
  return host.toLowerCase();
}

/** `h1:5432,[::1]:5433,h3` into hosts and their ports (undefined: the default). */
function splitHosts(list: string, text: string): Array<{ host: string; port: string | undefined }> {
  return list.split(",").map((item) => {
    const match = /^(\[[^\]]*\]|[^:[\]]*)(?::(.*))?$/.exec(item.trim());
    if (match === null) throw malformedPgUrl(text);
    const host = match[1]!.startsWith("[") ? match[1]!.slice(1, -1) : match[1]!;
    return { host, port: match[2] };
  });
}

/** scheme, authority, path, query (RFC 3986's split; libpq takes a URI only with the "//"). */
const PG_URL_SHAPE = /^(postgres(?:ql)?):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/is;
/** The query keywords the library reads for us; the rest of the query is ours to read. */
const LIBRARY_KEYWORDS = ["host", "port", "user", "password"];

function parseAuthority(url: string, original: string): ConnectionOptions {
  try {
    return parseConnectionString(url);
  } catch {
    throw malformedPgUrl(original);
  }
}

function malformedPgUrl(text: string): BriefdbError {
  return invalidUrl(`malformed PostgreSQL URL: ${redactUrl(text)}`, "expected postgres://user:password@host:port/database");
}

/** The URL with any password replaced by `***`, in the userinfo and in a `password=` parameter. */
export function redactUrl(url: string): string {
  const withoutParam = url.replace(/([?&]password=)[^&#]*/gi, "$1***");
  // the userinfo runs from after "scheme:" and any slashes (however many were typed) to the last "@"
  const start = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/*/.exec(withoutParam)?.[0].length ?? 0;
  const at = withoutParam.lastIndexOf("@");
  if (at < start) {
    // no "@": "user:secret" cut short (a .env's unquoted # ends the value there) looks like
    // host:port; what follows the colon is shown only when it can be a port
    const authority = /^[^/?#]*/.exec(withoutParam.slice(start))?.[0] ?? "";
    const colon = authority.lastIndexOf(":");
    if (colon < 0 || authority.startsWith("[") || /^\d*$/.test(authority.slice(colon + 1))) return withoutParam;
    return `${withoutParam.slice(0, start + colon + 1)}***${withoutParam.slice(start + authority.length)}`;
  }
  const userinfo = withoutParam.slice(start, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return withoutParam;
  return `${withoutParam.slice(0, start)}${userinfo.slice(0, colon)}:***${withoutParam.slice(at)}`;
}

/** NODE_ENV values that mean production: any case, spaces around ignored. */
export const PRODUCTION_ENVIRONMENTS: readonly string[] = ["production", "prod", "prd", "live"];

/** Whether NODE_ENV says production, however it was spelled ("Production", " prod ", "LIVE"). */
export function isProductionEnvironment(env: NodeJS.ProcessEnv = process.env): boolean {
  return PRODUCTION_ENVIRONMENTS.includes((env.NODE_ENV ?? "").trim().toLowerCase());
}

/**
 * The local rule (docs/architecture.md, "The local rule"): any SQLite database, PostgreSQL on
 * loopback or a Unix socket, and nothing at all while NODE_ENV says production.
 */
export function isLocalTarget(target: Target, env: NodeJS.ProcessEnv = process.env): boolean {
  if (isProductionEnvironment(env)) return false;
  if (target.dialect === "sqlite") return true;
  if (target.socketDir !== undefined) return true;
  // every server of a list: a failover may land on any of them
  return target.hosts.every((server) => isLoopbackHost(server.host));
}

/**
 * Whether a host is loopback for certain, without asking DNS: an address in 127.0.0.0/8 or ::1
 * however it is written (127.1, 0x7f.0.0.1, ::ffff:127.0.0.1 — read as a URL parser reads them),
 * or the name `localhost` itself, which resolvers answer from the hosts file (RFC 6761 §6.3). Any
 * other name is not: `db.localhost` or `localhost.` may be sent to DNS and answered with any address.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === "localhost") return true;
  if (isIP(bare) === 6) {
    const written = urlHostname(`[${bare}]`);
    return written === "[::1]" || (written !== undefined && /^\[::ffff:7f[0-9a-f]{2}:/.test(written));
  }
  // only digits, hex and dots may spell an IPv4 address; anything else would let the URL parser
  // read another part of the text as the host (user@127.0.0.1)
  // nor a trailing dot: the URL parser reads "127.1." as 127.0.0.1, but the system's resolver
  // takes a name ending in a dot as a DNS name and asks DNS for it
  if (!/^[0-9a-fx.]+$/i.test(bare) || bare.endsWith(".")) return false;
  const written = urlHostname(bare);
  return written !== undefined && isIP(written) === 4 && written.startsWith("127.");
}

/** The host as the WHATWG URL parser writes it (IPv4 and IPv6 in their canonical form), or undefined. */
function urlHostname(host: string): string | undefined {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
}

/** Whether separate connections to the target see one database (not so for SQLite's :memory:). */
export function isSharedTarget(target: Target): boolean {
  return !(target.dialect === "sqlite" && target.path === ":memory:");
}

/** Throws NOT_LOCAL unless the target passes the local rule. Call it before connecting. */
export function assertLocalTarget(target: Target, what: string, env: NodeJS.ProcessEnv = process.env): void {
  if (isLocalTarget(target, env)) return;
  const production = isProductionEnvironment(env);
  const why = production ? `NODE_ENV=${(env.NODE_ENV ?? "").trim()}` : "the host is not local";
  throw new BriefdbError(
    "NOT_LOCAL",
    `${what} runs on local databases only; refused ${target.display} (${why})`,
    production
      ? `NODE_ENV says production (${PRODUCTION_ENVIRONMENTS.join(", ")}, in any case), where nothing counts as local: unset it to work on a local database`
      : "point --db at a SQLite file or a PostgreSQL server on localhost",
  );
}

function invalidUrl(message: string, hint?: string): BriefdbError {
  return new BriefdbError("INVALID_URL", message, hint);
}
