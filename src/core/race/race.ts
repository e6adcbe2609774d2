/**
 * race-test: checks the target may be raced (local unless allowed, shared by several connections),
 * then runs the race of the mode asked for — deducts (deduct-race.ts) or holds (holds-race.ts).
 */
import type { BriefDatabase } from "../../db/database.js";
import { assertLocalTarget, isSharedTarget } from "../../db/target.js";
import { BriefdbError } from "../../errors.js";
import type { RaceOptions, RaceReport } from "./racers.js";

export type { Invariant, RaceOptions, RaceReport } from "./racers.js";

export async function runRaceTest(db: BriefDatabase, options: RaceOptions): Promise<RaceReport> {
  if (!options.allowRemote) assertLocalTarget(db.target, "race-test");
  if (!isSharedTarget(db.target)) {
    throw new BriefdbError("USAGE", "race-test needs a database that several connections share, not :memory:");
  }
  if (options.mode === "holds") {
    const { runHoldsRace } = await import("./holds-race.js");
    return runHoldsRace(db, options);
  }
  const { runDeductRace } = await import("./deduct-race.js");
  return runDeductRace(db, options);
}
