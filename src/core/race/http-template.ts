/**
 * The request `race-test --url` sends, as a template: method, URL, headers and body with
 * `{{amount}}`, `{{user}}` and `{{i}}` filled in per request. Checked once, before any request:
 * a malformed URL or header, a template without the amount, or a URL that is not loopback
 * (without allowRemote) is refused with its code of the contract (docs/architecture.md, "Exit codes").
 */
import { isLoopbackHost } from "../../db/target.js";
import { BriefdbError } from "../../errors.js";

export const DEFAULT_BODY = '{"amount":{{amount}}}';
const PLACEHOLDER = /\{\{\s*([A-Za-z]+)\s*\}\}/g;
const KNOWN = new Set(["amount", "user", "i"]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]);

export interface RequestTemplateInput {
  readonly url: string;
  readonly method?: string;
  /** `Name: value` lines; values may hold placeholders (a session cookie, a bearer token). */
  readonly headers?: readonly string[];
  /** Default `{"amount":{{amount}}}`; none for GET and HEAD. */
  readonly body?: string;
  readonly allowRemote?: boolean;
}

export interface RequestTemplate {
  readonly url: string;
  readonly method: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string | undefined;
  /** The URL without its password, for reports. */
  readonly display: string;
}

export interface Fill {
  readonly amount: number;
  readonly user: string;
  readonly i: number;
}

export function parseRequestTemplate(input: RequestTemplateInput): RequestTemplate {
  const method = (input.method ?? "POST").toUpperCase();
  if (!METHODS.has(method)) throw new BriefdbError("USAGE", `--method takes one of ${[...METHODS].join(", ")}, not "${input.method}"`);
  const url = checkedUrl(input.url, input.allowRemote === true);
  const given = (input.headers ?? []).map(parseHeader);
  // fetch refuses a URL with credentials: send them as Basic auth, as curl does (a header given wins)
  const credentials = url.username === "" && url.password === "" ? undefined : basicAuth(url);
  const hasAuth = given.some(([name]) => name.toLowerCase() === "authorization");
  const headers: Array<readonly [string, string]> = credentials && !hasAuth ? [...given, ["authorization", credentials]] : given;
  const bodyless = method === "GET" || method === "HEAD";
  if (bodyless && input.body !== undefined) throw new BriefdbError("USAGE", `a ${method} request has no body: put {{amount}} in the URL`);
  const body = bodyless ? undefined : (input.body ?? DEFAULT_BODY);
  const parts = [input.url, ...given.flat(), body ?? ""];
  for (const part of parts) checkPlaceholders(part);
  if (!parts.some((part) => placeholdersOf(part).includes("amount"))) {
    throw new BriefdbError("USAGE", "the request template never sends the amount", "put {{amount}} in --body, the URL or a --header");
  }
  const hasType = headers.some(([name]) => name.toLowerCase() === "content-type");
  const withType: Array<readonly [string, string]> = body !== undefined && !hasType ? [...headers, ["content-type", "application/json"]] : headers;
  const template = { url: withoutCredentials(input.url.trim()), method, headers: withType, body, display: displayUrl(input.url.trim()) };
  checkFilledBody(template, { amount: 1, user: "user", i: 0 });
  return template;
}

/**
 * A JSON body (the default content type) must still be JSON once filled in: the app would only
 * answer 400 to every request. Checked before any request, with the real user when it is known.
 */
export function checkFilledBody(template: RequestTemplate, fill: Fill): void {
  if (template.body === undefined) return;
  const type = template.headers.find(([name]) => name.toLowerCase() === "content-type")?.[1] ?? "";
  if (!/\bjson\b/i.test(type)) return;
  const body = fillTemplate(template, fill).init.body as string;
  try {
    JSON.parse(body);
  } catch (error) {
    throw new BriefdbError(
      "USAGE",
      `--body is not JSON once filled in (${error instanceof Error ? error.message : String(error)}): ${body.slice(0, 80)}`,
      'quote text placeholders ("{{user}}"), or set --header \'Content-Type: …\' for a body that is not JSON',
    );
  }
}

/** The request for one deduction: placeholders filled (URL parts percent-encoded). */
export function fillTemplate(template: RequestTemplate, fill: Fill): { url: string; init: RequestInit } {
  const raw = (text: string) => text.replace(PLACEHOLDER, (_, name: string) => String(fill[name as keyof Fill]));
  const url = template.url.replace(PLACEHOLDER, (_, name: string) => encodeURIComponent(String(fill[name as keyof Fill])));
  const headers = template.headers.map(([name, value]) => [name, raw(value)] as [string, string]);
  const init: RequestInit = { method: template.method, headers, redirect: "manual" };
  if (template.body !== undefined) init.body = raw(template.body);
  return { url, init };
}

function checkedUrl(text: string, allowRemote: boolean): URL {
  const trimmed = text.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*\{\{/i.test(trimmed)) {
    throw new BriefdbError("INVALID_URL", "placeholders go in the URL's path or query, not its host");
  }
  let url: URL;
  try {
    url = new URL(trimmed.replace(PLACEHOLDER, "0"));
  } catch {
    throw new BriefdbError("INVALID_URL", `not a URL: "${text}"`, "write it whole: http://127.0.0.1:3000/api/tokens/deduct");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BriefdbError("INVALID_URL", `race-test --url takes an http:// or https:// URL, not ${url.protocol}`);
  }
  // a placeholder that changes the host once filled (http:127.0.0.1{{user}}/) would aim elsewhere
  const other = parsedOrUndefined(trimmed.replace(PLACEHOLDER, "x.invalid"));
  if (other === undefined || other.host !== url.host || other.username !== url.username || other.password !== url.password) {
    throw new BriefdbError("INVALID_URL", "placeholders go in the URL's path or query, not its host");
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!allowRemote && !isLoopbackHost(host)) {
    throw new BriefdbError(
      "NOT_LOCAL",
      `race-test fires at loopback URLs only; refused ${displayUrl(trimmed)} (the host is not loopback)`,
      "point --url at localhost, 127.0.0.1 or [::1], or pass --allow-remote for an app you own",
    );
  }
  return url;
}

function parsedOrUndefined(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function basicAuth(url: URL): string {
  return `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
}

/** The URL as written, without its user and password (they go as a header). */
function withoutCredentials(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, "$1");
}

function parseHeader(line: string): [string, string] {
  const colon = line.indexOf(":");
  const name = colon < 0 ? "" : line.slice(0, colon).trim();
  const value = colon < 0 ? "" : line.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name) || /[\r\n]/.test(value)) {
    throw new BriefdbError("USAGE", `--header takes "Name: value", not "${line.slice(0, 60)}"`, "for example --header 'Cookie: session=abc123'");
  }
  // HTTP sends header values as bytes (Latin-1 at most): a "…" or an emoji could never be sent, and
  // every request would fail as a transport error — said once, here, before the first request
  const unsendable = [...value].find((char) => char.codePointAt(0)! > 0xff || char === "\0");
  if (unsendable !== undefined) {
    throw new BriefdbError(
      "USAGE",
      `--header ${name}: its value holds "${unsendable}" (U+${unsendable.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}), which HTTP cannot send in a header`,
      "copy the real value (a session cookie is plain ASCII), or percent-encode it",
    );
  }
  return [name, value];
}

function placeholdersOf(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((match) => match[1] ?? "");
}

function checkPlaceholders(text: string): void {
  const unknown = placeholdersOf(text).find((name) => !KNOWN.has(name));
  if (unknown !== undefined) throw new BriefdbError("USAGE", `unknown placeholder {{${unknown}}}: use {{amount}}, {{user}} or {{i}}`);
}

/**
 * The URL as written, without its password or its query's values (a token in `?tok=…` is as
 * secret as a header): each value shown as *** unless it is only placeholders, names kept.
 */
export function displayUrl(text: string): string {
  const withoutPassword = text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:)[^@/?#]*@/i, "$1***@");
  return withoutPassword.replace(/\?([^#]*)/, (_query, pairs: string) =>
    `?${pairs
      .split("&")
      .map((pair) => {
        const at = pair.indexOf("=");
        if (at < 0) return pair;
        const value = pair.slice(at + 1);
        return value === "" || /^(?:\{\{\w+\}\})+$/.test(value) ? pair : `${pair.slice(0, at)}=***`;
      })
      .join("&")}`,
  );
}
