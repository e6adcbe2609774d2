/**
 * The one grammar of durations, for every flag and option that takes one (--wait, --ttl, --since):
 * a whole number and a unit — ms, s, m, h, d or w — or a bare number, which is seconds. Each flag
 * sets its own bounds; the words stay the same everywhere.
 */
export const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

const DURATION = /^(\d{1,12})(ms|s|m|h|d|w)?$/;

/** The duration in milliseconds, or undefined when the text is not one (spaces around ignored). */
export function durationMs(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  // past 2^53 it is no longer exact, but every flag's bounds refuse it long before that
  return Number(match[1]) * DURATION_UNITS_MS[(match[2] ?? "s") as keyof typeof DURATION_UNITS_MS];
}

/** A duration as a person writes it: the largest unit it is a whole number of (90000 → "90s", 7200000 → "2h"). */
export function formatDuration(ms: number): string {
  const units = Object.entries(DURATION_UNITS_MS).reverse();
  for (const [unit, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
