/**
 * Which server of a host list a new pool connection goes to, for URLs that list several servers or
 * ask for a role (target_session_attrs): the server is found here, and postgres.js is handed a
 * socket already connected to it (its `socket` option), as if the URL named that one server.
 *
 * postgres.js 3.4.9 tries the hosts itself, but when no host fits it tries them again for ever,
 * never failing (its connect timeout restarts with each try): a call made while a failover was
 * under way waited until a primary came back, for ever if none did. With more than one host it
 * also ignores an error raised while a connection is being made (its error() returns early).
 * Found with harness/replica-set.mjs (test/switchover.test.ts).
 *
 * Here the hosts are tried in the URL's order, each asked its role by a short connection of its
 * own (`SELECT pg_is_in_recovery()`), round after round until the connect timeout: a failover's
 * gap (the primary gone, the standby not yet promoted) is waited out. The server found is
 * remembered, and later connections go straight to it, until one of its connections closes, a
 * statement fails with the connection lost or READ_ONLY (the dialect's classify tells it), or a
 * connection to it cannot be made: then the list is asked again. When the timeout passes with no
 * server fitting, the connection fails with a code that says why (READ_ONLY: only standbys
 * answered where the primary was asked for; DB_UNREACHABLE otherwise), nothing sent.
 */
import { connect as connectTcp, Socket } from "node:net";
import postgres from "postgres";
import { BriefdbError } from "../../errors.js";
import { errorCode, rootMessage } from "../driver-errors.js";
import type { PgHost, PgTarget, TargetSessionAttrs } from "../target.js";

/** Pause between two rounds over the list, while no server fits. */
const ROUND_PAUSE_MS = 100;
/** The least time a server is given to answer, however many are listed. */
const MIN_ANSWER_MS = 500;
/** A server's failure that says nothing about the others (a wrong password, no such database): ends the search at once. */
const DECISIVE_CODES = new Set(["28P01", "28000", "3D000"]);

type Role = "primary" | "standby";

/** What a server answered when asked, for the message when none fits. */
type Answer = { readonly role: Role } | { readonly error: unknown };

export class ServerFinder {
  /** The index in the list of the server last found to fit. */
  private known: number | undefined;
  private stopped = false;

  constructor(
    private readonly target: PgTarget,
    /** The pool's options, from which each question's connection is made. */
    private readonly probeOptions: postgres.Options<Record<string, never>>,
    private readonly timeoutMs: number,
  ) {}

  /** Whether a target needs the finder: several servers, or one asked for a role. */
  static needed(target: PgTarget): boolean {
    return target.socketDir === undefined && (target.hosts.length > 1 || target.targetSessionAttrs !== "any");
  }

  /** Whether the URL lists more than one server. */
  listsSeveral(): boolean {
    return this.target.hosts.length > 1;
  }

  /** Connections being made fail at once from now on (the database is closing). */
  stop(): void {
    this.stopped = true;
  }

  /** The server found is not trusted any more: the next connection asks the list again. */
  forget(): void {
    this.known = undefined;
  }

  /**
   * postgres.js's `socket` option: a socket connected (or connecting) to the server that fits.
   * Never throws — postgres.js would leave the connection in its connecting state for ever —: a
   * failure is a socket destroyed with the error, which postgres.js hands to the statement waiting.
   */
  async socket(): Promise<Socket> {
    try {
      return await this.find();
    } catch (error) {
      const failed = new Socket();
      // destroyed once postgres.js listens to it (it does as soon as this resolves), and before
      // its first write, which it defers with setImmediate too
      setImmediate(() => failed.destroy(error instanceof Error ? error : new Error(String(error))));
      return failed;
    }
  }

  private async find(): Promise<Socket> {
    const deadline = Date.now() + this.timeoutMs;
    const known = this.known;
    if (known !== undefined) {
      const socket = await this.open(this.target.hosts[known] as PgHost, Math.min(deadline, Date.now() + this.perServerMs())).catch(() => undefined);
      if (socket !== undefined) return this.watched(socket);
      this.forget();
    }
    const hosts = this.target.hosts;
    const attrs = this.target.targetSessionAttrs;
    // what each server said when last asked: the verdict when the timeout passes, a round cut
    // short by it keeping what the round before heard from the servers it could not ask in full
    let said: Array<Answer | undefined> = [];
    for (;;) {
      const answers: Answer[] = [];
      for (const [index, host] of hosts.entries()) {
        this.refuseIfStopped();
        // the timeout bounds the whole search
        if (answers.length > 0 && Date.now() >= deadline) throw this.noneFits(lastSaid(said, answers));
        // a server that takes the connection and never answers (a frozen machine, a dropped
        // route) keeps at most its share of what remains of the timeout, the servers after it
        // in the round sharing the rest: each is tried, as libpq's connect_timeout is per host
        const answer = await this.ask(host, Date.now() + (deadline - Date.now()) / (hosts.length - index));
        answers.push(answer);
        if ("error" in answer && DECISIVE_CODES.has(errorCode(answer.error) ?? "")) throw answer.error;
        if ("role" in answer && fits(attrs, answer.role)) return this.take(index, deadline);
      }
      // prefer-standby: no standby answered, the first primary that did will do
      const fallback = attrs === "prefer-standby" ? answers.findIndex((answer) => "role" in answer) : -1;
      if (fallback >= 0) return this.take(fallback, deadline);
      said = lastSaid(said, answers);
      if (Date.now() + ROUND_PAUSE_MS >= deadline) throw this.noneFits(said);
      await new Promise((resolve) => setTimeout(resolve, ROUND_PAUSE_MS));
    }
  }

  /**
   * Every server of the list that answers as a primary (not in recovery), each asked on a
   * connection of its own, all at once, within half the connect timeout (health asks this beside
   * its other checks, under a readiness probe's deadline). Two or more is a split brain: an old
   * primary back after a failover, not fenced, takes writes too; a server that does not answer in
   * time (down, frozen) is left out.
   */
  async primaries(): Promise<string[]> {
    const deadline = Date.now() + this.timeoutMs / 2;
    const answers = await Promise.all(this.target.hosts.map((host) => this.ask(host, deadline)));
    return this.target.hosts
      .filter((_, i) => {
        const answer = answers[i];
        return answer !== undefined && "role" in answer && answer.role === "primary";
      })
      .map((host) => (host.host.includes(":") ? `[${host.host}]:${host.port}` : `${host.host}:${host.port}`));
  }

  /** How long the server last found may take to take a connection: its share of the timeout, at least MIN_ANSWER_MS. */
  private perServerMs(): number {
    return Math.max(MIN_ANSWER_MS, this.timeoutMs / this.target.hosts.length);
  }

  private async take(index: number, deadline: number): Promise<Socket> {
    // the server just answered: found as the timeout ends, it is still given a moment to connect
    const socket = await this.open(this.target.hosts[index] as PgHost, Math.max(deadline, Date.now() + MIN_ANSWER_MS));
    this.known = index;
    return this.watched(socket);
  }

  /** A socket whose closing makes the list be asked again: its server may have gone, or changed role. */
  private watched(socket: Socket): Socket {
    socket.once("close", () => this.forget());
    return socket;
  }

  /** The server's role, asked on a connection of its own (the pool's credentials and TLS); or why it could not say. */
  private async ask(host: PgHost, deadline: number): Promise<Answer> {
    // asked even when any server will do (target_session_attrs=any): a server that takes the TCP
    // connection and then says nothing, or something that is not PostgreSQL, is passed over for
    // the next, as libpq does, where a TCP connection alone took it and every call failed
    const seconds = Math.max(1, deadline - Date.now()) / 1000;
    const probe = postgres({
      ...this.probeOptions,
      host: [host.host] as unknown as string,
      port: [host.port] as unknown as number,
      socket: undefined,
      target_session_attrs: undefined,
      max: 1,
      connect_timeout: seconds,
      idle_timeout: 1,
      onclose: undefined,
    } as postgres.Options<Record<string, never>>);
    try {
      const [row] = await probe.unsafe<Array<{ standby: boolean }>>("SELECT pg_is_in_recovery() AS standby");
      return { role: row?.standby === true ? "standby" : "primary" };
    } catch (error) {
      return { error };
    } finally {
      await probe.end({ timeout: 0 }).catch(() => undefined);
    }
  }

  /** A TCP connection to the server, once it is made (a refused one rejects, so that the next server can be tried). */
  private open(host: PgHost, deadline: number): Promise<Socket> {
    this.refuseIfStopped();
    return new Promise((resolve, reject) => {
      const socket = connectTcp({ host: host.host, port: host.port });
      // postgres.js names the server in its errors and TLS checks by these
      Object.assign(socket, { host: host.host, port: host.port });
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect timeout ${host.host}:${host.port}`), { code: "CONNECT_TIMEOUT" })), Math.max(1, deadline - Date.now()));
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", reject);
        resolve(socket);
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  private refuseIfStopped(): void {
    if (this.stopped) throw new BriefdbError("CLOSED", `${this.target.display} is closed: the connection was not made; nothing changed`);
  }

  private noneFits(answers: ReadonlyArray<Answer | undefined>): BriefdbError {
    const attrs = this.target.targetSessionAttrs;
    const said = answers
      .map((answer, i) => {
        const host = this.target.hosts[i] as PgHost;
        if (answer === undefined) return `${host.host}:${host.port} was not asked (the timeout passed)`;
        return `${host.host}:${host.port} ${"role" in answer ? `is a ${answer.role}` : `did not answer (${rootMessage(answer.error)})`}`;
      })
      .join("; ");
    const seconds = this.timeoutMs / 1000;
    const wantsPrimary = attrs === "read-write" || attrs === "primary";
    if (wantsPrimary && answers.some((answer) => answer !== undefined && "role" in answer && answer.role === "standby")) {
      return new BriefdbError(
        "READ_ONLY",
        `no server of ${this.target.display} took writes within ${seconds} s (${said}); nothing was sent, nothing changed`,
        "a failover may be under way (the primary gone, a standby not yet promoted): try again once it is done, or wait longer with a larger connect timeout (--timeout)",
      );
    }
    return new BriefdbError(
      "DB_UNREACHABLE",
      `no server of ${this.target.display} answered as target_session_attrs=${attrs} asks within ${seconds} s (${said}); nothing was sent, nothing changed`,
      "check that the servers are running and the URL lists them all (--db, DATABASE_URL)",
    );
  }
}

/**
 * What each server said last: this round's answers, and for a server this round did not ask, or
 * whose question the timeout cut short, what it said the round before (a standby that answered a
 * moment ago is still a standby: "no primary", not "no server").
 */
function lastSaid(before: ReadonlyArray<Answer | undefined>, now: readonly Answer[]): Array<Answer | undefined> {
  return Array.from({ length: Math.max(before.length, now.length) }, (_, i) => {
    const answer = now[i];
    const cutShort = answer !== undefined && "error" in answer && errorCode(answer.error) === "CONNECT_TIMEOUT";
    return answer === undefined || (cutShort && before[i] !== undefined) ? before[i] : answer;
  });
}

/** Whether a server with `role` is the one the URL asks for, as libpq reads target_session_attrs. */
function fits(attrs: TargetSessionAttrs, role: Role): boolean {
  if (attrs === "any") return true;
  if (attrs === "read-write" || attrs === "primary") return role === "primary";
  return role === "standby"; // read-only, standby, prefer-standby (whose fallback is the caller's)
}
