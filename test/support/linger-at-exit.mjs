// Preloaded into a CLI run (NODE_OPTIONS=--import, test/interrupt.test.ts): once the run is over and
// the process would end (it calls process.exit, or its event loop empties), it says so on stderr and
// lingers, as while its connections close, until a signal ends it.
const exit = process.exit.bind(process);
let held = false;
function hold() {
  if (held) return false;
  held = true;
  process.stderr.write("lingering\n");
  setInterval(() => {}, 1000);
  return true;
}
// the first call returns instead of ending the process (the type says it never returns)
process.exit = /** @type {typeof process.exit} */ (
  /** @param {string | number | null | undefined} [code] */ (code) => {
    if (!hold()) exit(code);
  }
);
process.once("beforeExit", hold);
