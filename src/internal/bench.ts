/**
 * For briefdb's own benches only, not the public face: the PostgreSQL statements briefdb runs, so
 * that pgbench can run the very same text as the baseline. `briefdb/internal/bench` may change
 * in any release.
 */
export { PG_DEDUCT_STATEMENT } from "../db/pg/ledger.js";
export { PG_CAPTURE_STATEMENT, PG_HOLD_STATEMENT } from "../db/pg/holds.js";
