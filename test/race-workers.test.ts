import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { RACE_WORKER_FOLDER, RACE_WORKERS, raceWorkerFile } from "../src/core/race/racers.js";

const ROOT = resolve(import.meta.dirname, "..");

describe("race-test's worker threads", () => {
  it.each(RACE_WORKERS)("%s is a source file beside racers.ts and a built file where raceWorkerFile points", (worker) => {
    expect(existsSync(join(ROOT, "src", ...RACE_WORKER_FOLDER, `${worker}.ts`))).toBe(true);
    expect(existsSync(join(ROOT, "src", ...RACE_WORKER_FOLDER, "racers.ts"))).toBe(true);
    expect(raceWorkerFile(worker)).toBe(join(ROOT, "dist", ...RACE_WORKER_FOLDER, `${worker}.js`));
    expect(existsSync(raceWorkerFile(worker))).toBe(true);
  });
});
