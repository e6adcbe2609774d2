/**
 * The slow-query report as a CI gate: the app's "API under 500 ms" checked, not
 * hoped. Compares each canonical query's measured p95 with the user's budget, and whether it
 * reads through an index.
 */
import type { ProbeResult } from "./probes.js";

export interface ProbeGates {
  /** Budget for every probe's p95, in ms. */
  readonly maxP95Ms?: number;
  /** Every probe must read through an index. */
  readonly requireIndex?: boolean;
}

export interface GateFailure {
  readonly probe: string;
  readonly gate: "max-p95" | "require-index";
  readonly detail: string;
}

export function judgeProbes(probes: readonly ProbeResult[], gates: ProbeGates): GateFailure[] {
  const failures: GateFailure[] = [];
  for (const probe of probes) {
    if (gates.maxP95Ms !== undefined && probe.p95Ms > gates.maxP95Ms) {
      failures.push({ probe: probe.name, gate: "max-p95", detail: `p95 ${probe.p95Ms} ms over the ${gates.maxP95Ms} ms budget` });
    }
    if (gates.requireIndex && !probe.usesIndex) {
      const scans = probe.fullScans.length > 0 ? `reads ${probe.fullScans.join(", ")} whole` : "reads without an index";
      failures.push({ probe: probe.name, gate: "require-index", detail: probe.suggestion ? `${scans}; fix: ${probe.suggestion}` : scans });
    }
  }
  return failures;
}
