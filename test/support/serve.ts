/**
 * `briefdb serve --port 0 --json` started from the built CLI, resolved once it printed its first
 * JSON object (where it listens): the one way the test files start it.
 */
import { spawnCli } from "./databases.js";

export interface ServeProcess {
  readonly child: ReturnType<typeof spawnCli>;
  /** serve's first JSON object: url, port, routes, dashboard, … */
  readonly started: Record<string, any>;
  /** Where it listens, e.g. http://127.0.0.1:41234 */
  readonly base: string;
  readonly port: number;
  /** Its exit code once it exits. */
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

export async function startServe(args: readonly string[], env?: Record<string, string | undefined>): Promise<ServeProcess> {
  const child = spawnCli(["serve", "--port", "0", "--json", ...args], env);
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += String(chunk)));
  child.stdout.on("data", (chunk) => (stdout += String(chunk)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const started = await new Promise<Record<string, any>>((resolve, reject) => {
    child.stdout.on("data", () => stdout.includes("\n") && resolve(JSON.parse(stdout.split("\n")[0]!)));
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  return {
    child,
    started,
    base: String(started.url),
    port: Number(started.port),
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
