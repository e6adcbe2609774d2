// Preloaded into a CLI run (NODE_OPTIONS=--import, test/interrupt.test.ts): once the run is over
// and the process would exit, it says so on stderr and lingers, as while its connections close,
// until a signal ends it.
process.once("beforeExit", () => {
  process.stderr.write("lingering\n");
  setInterval(() => {}, 1000);
});
