/**
 * How race-test's racers deduct: `atomic` is briefdb's own operation; `naive` is the source
 * document's "before" code (read, check, write), kept so that the race test is seen to catch a
 * race. A module of its own, free of drivers, so that parsing `--strategy` loads nothing else.
 */
export const RACE_STRATEGIES = ["atomic", "naive"] as const;

export type RaceStrategy = (typeof RACE_STRATEGIES)[number];
