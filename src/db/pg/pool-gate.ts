/**
 * Every wait for one of the pool's connections, bounded, and the one that could never end refused
 * at once. postgres.js sends a query on any connection not reserved by a transaction (or
 * reserve()), and when every one is, queues it for as long as it takes: for ever when the
 * transactions holding them wait for that very query (a call on `db` inside withTransaction with
 * a pool of one). The gate stands in front of postgres.js: it counts the connections briefdb's own
 * transactions hold, keeps a call that finds none free until one is (up to `waitMs`: POOL_TIMEOUT,
 * never sent), knows from the async context how many connections the caller's enclosing
 * transactions hold (all of them: POOL_DEADLOCK, at once), and knows what is still running when
 * the database closes (a call after that: CLOSED).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type postgres from "postgres";
import { BriefdbError } from "../../errors.js";
import { errorCode } from "../driver-errors.js";
import { databaseClosed, stoppedByClose } from "../misuse.js";
import { cancelOnServer } from "./cancel.js";

/** postgres.js's Query as the gate handles it: a promise that runs once handed to its handler. */
interface GatedQuery {
  handler: ((query: GatedQuery) => void) & { debug?: unknown };
  resolve(value: unknown): void;
  reject(error: unknown): void;
  cancelled: unknown;
  cancel(): void;
  /** postgres.js sets it as it sends the query: its connection's backend ({ pid, secret }), one object per connection for the pool's life. */
  state?: object | null;
  /** Its SQL, which postgres.js sets as it builds the query, just before it calls its debug hook. */
  string?: unknown;
}

/** The pool's options as the connection watch hooks into them: postgres.js reads both when it calls them. */
export interface WatchedPoolOptions {
  debug?: unknown;
  onclose?: unknown;
}

interface Waiter {
  /** A transaction takes the connection it waited for; a query only needs one not reserved. */
  readonly reserves: boolean;
  readonly go: () => void;
  readonly refuse: (error: BriefdbError) => void;
  timer?: NodeJS.Timeout;
}

export interface PoolGateOptions {
  /** The pool's size (postgres.js `max`). */
  readonly size: number;
  /** How long a call waits for a connection; 0 is no limit. */
  readonly waitMs: number;
  /** The database's redacted name, for the messages. */
  readonly display: string;
}

export class PoolGate {
  /** Connections held by briefdb's transactions (and reserve()) now. */
  private reserved = 0;
  private readonly waiters: Waiter[] = [];
  /** Queries handed to postgres.js and not answered yet, on the pool or inside a transaction. */
  private readonly running = new Set<GatedQuery>();
  /** Statements close() cancelled: their cancellation is answered as CLOSED. */
  private readonly stopped = new WeakSet<GatedQuery>();
  /** Told when what they wait for is over. */
  private listeners: Array<{ readonly done: () => boolean; readonly resolve: () => void }> = [];
  /** How many connections the caller's enclosing transactions hold. */
  private readonly held = new AsyncLocalStorage<number>();
  private closed = false;
  /** Which connection (postgres.js's id) each backend object (a query's `state`) belongs to. */
  private readonly connectionOf = new WeakMap<object, number>();
  /** The query being handed to postgres.js now, while the connection watch is on. */
  private sending: GatedQuery | undefined;
  private watching = false;

  constructor(private readonly options: PoolGateOptions) {}

  /**
   * `raw` behind the gate: its queries wait for a connection not reserved, its transactions for one
   * to reserve. `refuseDeadlock` false for briefdb's batches, which do not run in their caller's
   * transaction even when a caller inside one set them off.
   */
  sql(raw: postgres.Sql, refuseDeadlock: boolean): postgres.Sql {
    return new Proxy(raw, {
      apply: (target, self, args: unknown[]) => this.gated(Reflect.apply(target, self, args), refuseDeadlock),
      get: (target, key) => {
        if (key === "unsafe" || key === "file") {
          const make = Reflect.get(target, key) as (...args: unknown[]) => unknown;
          return (...args: unknown[]) => this.gated(make(...args), refuseDeadlock);
        }
        if (key === "begin") return (...args: unknown[]) => this.begin(target, args, refuseDeadlock);
        if (key === "reserve") return () => this.reserve(target, refuseDeadlock);
        return Reflect.get(target, key);
      },
    });
  }

  /** Throws what a call made now would be refused with: CLOSED, or POOL_DEADLOCK from inside transactions holding every connection. */
  check(): void {
    const refusal = this.refusal(true);
    if (refusal !== undefined) throw refusal;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves once no statement of briefdb's runs, no transaction of its is open and no call waits. */
  idle(): Promise<void> {
    return this.until(() => this.running.size === 0 && this.reserved === 0 && this.waiters.length === 0);
  }

  /** Resolves once no statement of briefdb's runs (an open transaction may still be). */
  statementsDone(): Promise<void> {
    return this.until(() => this.running.size === 0);
  }

  /**
   * From now on every call is refused (CLOSED), those waiting for a connection too; the statements
   * still running are cancelled on the server, so that it lets go of their connections (a statement
   * waiting for a lock would hold its session, and the process, until its lock timeout).
   */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.refuse(databaseClosed(this.options.display));
    }
    for (const query of this.running) {
      this.stopped.add(query);
      cancelOnServer(query);
    }
  }

  /**
   * A statement still unanswered when the connection it went out on closes fails at once as a lost
   * connection (CONNECTION_CLOSED). postgres.js 3.4.9 never answers one sent between its socket's
   * reset ('error', when it finds nothing in flight to fail) and its 'close' (which fails nothing
   * after an error): the connection is still listed open in that gap, and the statement stayed
   * pending until end() destroyed the connection — for ever for a caller that never closes.
   * postgres.js does not say which connection a query went to. Its debug hook does, called with the
   * connection's id as a query is built (its `state`, the connection's backend object, set just
   * before); onclose names the connection that closed. The hook is shown to postgres.js only while
   * the gate hands it a query, once that query's SQL is built: a hook shown at any other time would
   * make the fields of driver errors enumerable (the query's parameters among them). A statement
   * sent on a connection while it is being made is built later, and not mapped by it; any one sent
   * on it later maps the connection for its life, as the gap's own does. briefdb's own pool only.
   */
  watchConnections(options: WatchedPoolOptions): void {
    this.watching = true;
    const { debug, onclose } = options;
    const hook = (id: number) => {
      const query = this.sending;
      this.sending = undefined;
      if (query?.state != null) this.connectionOf.set(query.state, id);
    };
    Object.defineProperty(options, "debug", { configurable: true, enumerable: true, get: () => (this.sending?.string === undefined ? debug : hook) });
    options.onclose = (id: number) => {
      if (typeof onclose === "function") (onclose as (id: number) => void)(id);
      this.connectionClosed(id);
    };
  }

  /** `dispatch(query)`, with the connection watch told which query postgres.js builds meanwhile. */
  private send(query: GatedQuery, dispatch: (query: GatedQuery) => void): void {
    if (!this.watching) return dispatch(query);
    this.sending = query;
    try {
      dispatch(query);
    } finally {
      this.sending = undefined;
    }
  }

  private connectionClosed(id: number): void {
    for (const query of [...this.running]) {
      if (query.state != null && this.connectionOf.get(query.state) === id) query.reject(lostWithConnection(this.options.display));
    }
  }

  private refusal(refuseDeadlock: boolean): BriefdbError | undefined {
    if (this.closed) return databaseClosed(this.options.display);
    if (refuseDeadlock && (this.held.getStore() ?? 0) >= this.options.size) return this.deadlock();
    return undefined;
  }

  /** A query from `raw` waits at the gate when it reaches its handler; anything else passes. */
  private gated(made: unknown, refuseDeadlock: boolean): unknown {
    if (!isQuery(made)) return made;
    const dispatch = made.handler;
    const admit: GatedQuery["handler"] = (query) => {
      const refusal = this.refusal(refuseDeadlock);
      if (refusal !== undefined) return query.reject(refusal);
      const go = () => {
        // cancelled while it waited here: postgres.js has rejected it already, and never sent it
        if (query.cancelled) return;
        this.track(query);
        this.send(query, dispatch);
      };
      if (this.reserved < this.options.size) return go();
      this.wait({ reserves: false, go, refuse: (error) => query.reject(error) });
    };
    admit.debug = dispatch.debug;
    made.handler = admit;
    return made;
  }

  /** A query inside one of briefdb's transactions: it has its connection; only counted as running, in `owned` too. */
  private tracked(made: unknown, owned: Set<GatedQuery>): unknown {
    if (!isQuery(made)) return made;
    const dispatch = made.handler;
    const count: GatedQuery["handler"] = (query) => {
      this.track(query);
      owned.add(query);
      this.send(query, dispatch);
    };
    count.debug = dispatch.debug;
    made.handler = count;
    return made;
  }

  /** `scoped` (a transaction's or savepoint's Sql) with its queries counted as running, and kept in `owned`. */
  private scoped(scoped: postgres.Sql, owned: Set<GatedQuery>): postgres.Sql {
    return new Proxy(scoped, {
      apply: (target, self, args: unknown[]) => this.tracked(Reflect.apply(target, self, args), owned),
      get: (target, key) => {
        if (key === "unsafe" || key === "file") {
          const make = Reflect.get(target, key) as (...args: unknown[]) => unknown;
          return (...args: unknown[]) => this.tracked(make(...args), owned);
        }
        if (key === "savepoint") {
          const savepoint = Reflect.get(target, key) as (...args: unknown[]) => Promise<unknown>;
          return (...args: unknown[]) => savepoint(...this.withScoped(args, owned));
        }
        return Reflect.get(target, key);
      },
    });
  }

  /** A transaction's arguments (options?, fn) with fn handed the counted Sql. */
  private withScoped(args: unknown[], owned: Set<GatedQuery>): unknown[] {
    const last = args.length - 1;
    const fn = args[last];
    if (typeof fn !== "function") return args;
    return [...args.slice(0, last), (scoped: postgres.Sql) => (fn as (sql: postgres.Sql) => unknown)(this.scoped(scoped, owned))];
  }

  private async begin(raw: postgres.Sql, args: unknown[], refuseDeadlock: boolean): Promise<unknown> {
    const depth = await this.acquire(refuseDeadlock);
    const owned = new Set<GatedQuery>();
    try {
      const begin = raw.begin as unknown as (...args: unknown[]) => Promise<unknown>;
      // the operation runs with one more connection held by its caller's transactions
      return await this.held.run(depth + 1, () => begin(...this.withScoped(args, owned)));
    } finally {
      // once the transaction is over, a statement of it that was never answered is not running:
      // its connection broke (postgres.js answers it only when the connection is destroyed, and
      // its rollback then writes on the socket that is gone, porsager/postgres#1208)
      for (const query of owned) this.running.delete(query);
      this.release();
    }
  }

  private async reserve(raw: postgres.Sql, refuseDeadlock: boolean): Promise<postgres.ReservedSql> {
    await this.acquire(refuseDeadlock);
    let reserved: postgres.ReservedSql;
    try {
      reserved = await raw.reserve();
    } catch (error) {
      this.release();
      throw error;
    }
    const release = reserved.release;
    let released = false;
    reserved.release = () => {
      release();
      if (released) return;
      released = true;
      this.release();
    };
    return reserved;
  }

  /** Takes a connection for a transaction, waiting (bounded) while none is free; the caller's depth. */
  private async acquire(refuseDeadlock: boolean): Promise<number> {
    const depth = this.held.getStore() ?? 0;
    const refusal = this.refusal(refuseDeadlock);
    if (refusal !== undefined) throw refusal;
    if (this.reserved < this.options.size) {
      this.reserved++;
      return depth;
    }
    await new Promise<void>((go, refuse) => this.wait({ reserves: true, go, refuse }));
    return depth;
  }

  private release(): void {
    this.reserved--;
    this.wake();
    this.changed();
  }

  private wait(waiter: Waiter): void {
    if (this.options.waitMs > 0) {
      waiter.timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        waiter.refuse(this.timeout());
        this.changed();
      }, this.options.waitMs);
    }
    this.waiters.push(waiter);
  }

  /** Lets waiters go, in order, while connections are free; a transaction takes its connection here. */
  private wake(): void {
    while (this.waiters.length > 0 && this.reserved < this.options.size) {
      const waiter = this.waiters.shift() as Waiter;
      clearTimeout(waiter.timer);
      if (waiter.reserves) this.reserved++;
      waiter.go();
    }
  }

  private track(query: GatedQuery): void {
    this.running.add(query);
    const { resolve, reject } = query;
    const done = () => {
      this.running.delete(query);
      this.changed();
    };
    query.resolve = (value) => (done(), resolve(value));
    query.reject = (error) => {
      done();
      // cancelled by close(): the statement was rolled back
      reject(this.stopped.has(query) && errorCode(error) === "57014" ? stoppedByClose(this.options.display, error) : error);
    };
  }

  private until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => this.listeners.push({ done, resolve }));
  }

  private changed(): void {
    const ready = this.listeners.filter((listener) => listener.done());
    if (ready.length === 0) return;
    this.listeners = this.listeners.filter((listener) => !ready.includes(listener));
    for (const listener of ready) listener.resolve();
  }

  private timeout(): BriefdbError {
    const { size, waitMs } = this.options;
    return new BriefdbError(
      "POOL_TIMEOUT",
      `no connection of the pool (${size}) came free within ${waitMs} ms: the call was not sent; nothing changed`,
      "transactions held every connection that long: keep them short, open the database with a larger poolSize, or wait longer (poolTimeoutMs)",
    );
  }

  private deadlock(): BriefdbError {
    const { size } = this.options;
    return new BriefdbError(
      "POOL_DEADLOCK",
      `called on the database from inside withTransaction, whose transaction(s) hold every connection of the pool (${size}): it could only wait for itself; nothing changed`,
      "inside the operation use tx (or { transaction: tx }) instead of db, or open the database with a larger poolSize",
    );
  }
}

/** A statement whose connection closed before it was answered: driver-like, read as a lost connection (it may have run). */
function lostWithConnection(display: string): Error {
  return Object.assign(new Error(`write CONNECTION_CLOSED ${display}: the connection closed before the statement was answered`), { code: "CONNECTION_CLOSED" });
}

function isQuery(value: unknown): value is GatedQuery {
  const candidate = value as Partial<GatedQuery> | null;
  return value instanceof Promise && typeof candidate?.handler === "function" && typeof candidate.reject === "function";
}
