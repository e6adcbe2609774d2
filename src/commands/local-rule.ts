/**
 * The local rule at the CLI face: commands that write test data need `--local`, and refuse a
 * target that is not local before anything connects to it.
 */
import { assertLocalTarget } from "../db/target.js";
import { BriefdbError } from "../errors.js";
import type { Context } from "./context.js";

export function requireLocalTarget(ctx: Context, command: string, local: boolean | undefined): void {
  if (local !== true) {
    throw new BriefdbError(
      "USAGE",
      `${command} works on local databases only and needs --local`,
      `run \`briefdb ${command} --local\` against a SQLite file or a PostgreSQL server on localhost`,
    );
  }
  assertLocalTarget(ctx.target, command);
}
