/** Deadlines on the database's answers, and the failure a missed one is (one code everywhere: DB_UNREACHABLE). */
import { BriefdbError } from "../../errors.js";

/** The work's result, or undefined when it has not settled within `ms` (it goes on unawaited). */
export async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {}); // settled after the deadline: nobody is listening any more
  }
}

/**
 * A read that got no answer within `ms`: the database is there for all we know, but does not
 * answer (a server stopped or overloaded, a network that drops packets, a lock that never frees).
 * DB_UNREACHABLE, as a connect timeout is: the health check, /readyz and the dashboard say the same.
 */
export function noAnswerError(ms: number): BriefdbError {
  return new BriefdbError(
    "DB_UNREACHABLE",
    `the database did not answer within ${ms} ms`,
    "check that the server is running and answering (a stopped or overloaded server, a network that drops packets, a lock held for long)",
  );
}
