// The dashboard page: polls the JSON endpoints (relative URLs, so it works wherever it is mounted)
// and fills the static page. Every stored string reaches the page through textContent or an
// attribute value, never as markup. Numbers are shown as the endpoints give them.
import { domFactory, duration, histogramSvg, lineSvg, percentileBucket, visibleText } from "./charts.js";

const h = domFactory(document);
const POLL_MS = { overview: 5000, ledger: 5000, queries: 30000, schema: 60000 };
// a #token= in the address is taken (it is the newest one given) and always removed from it, so
// that it is neither shown, bookmarked nor kept in the history, whatever was stored before
let token = tokenFromHash() ?? sessionStorage.getItem("briefdb-token");

function tokenFromHash() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  let value = match[1];
  try {
    value = decodeURIComponent(value);
  } catch {
    // a malformed %-escape: the text as it is (the server refuses a wrong token)
  }
  if (value === "") return null;
  sessionStorage.setItem("briefdb-token", value);
  return value;
}

// pasted into the address bar of the open page: taken and removed the same way
window.addEventListener("hashchange", () => {
  const given = tokenFromHash();
  if (given === null) return;
  token = given;
  document.getElementById("auth").hidden = true;
  for (const name of Object.keys(POLL_MS)) void refresh(name);
});

async function call(path, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...init, headers, cache: "no-store" });
  if (response.status === 401) {
    askForToken(token ? "that token was refused" : "");
    throw new Error("token required");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
  return body;
}

function askForToken(message) {
  const form = document.getElementById("auth");
  form.hidden = false;
  document.getElementById("auth-error").textContent = message;
  document.getElementById("token").focus();
}

document.getElementById("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  token = /** @type {HTMLInputElement} */ (document.getElementById("token")).value.trim();
  sessionStorage.setItem("briefdb-token", token);
  document.getElementById("auth").hidden = true;
  for (const name of Object.keys(POLL_MS)) void refresh(name);
});

// ---- small helpers -------------------------------------------------------------------------

function setText(key, text, raw) {
  for (const node of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(`[data-k="${key}"]`))) {
    node.textContent = visibleText(text);
    node.dataset.v = raw === undefined ? text : String(raw);
  }
}

function number(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 3 });
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** 14:02:07 today, else 2026-12-05 14:02 */
function when(iso) {
  if (iso === null) return "–";
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, "0");
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  if (d.toDateString() === new Date().toDateString()) return time;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time.slice(0, 5)}`;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = visibleText(text);
  if (className) td.className = className;
  return td;
}

function row(...cells) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}

function item(text, className) {
  const li = document.createElement("li");
  li.textContent = visibleText(text);
  if (className) li.className = className;
  return li;
}

function fill(id, children) {
  document.getElementById(id).replaceChildren(...children);
}

function bucketsOf(histogram) {
  return trimEmpty(histogram.counts.map((count, i) => ({ leMs: histogram.boundsMs[i] ?? null, count })));
}

function trimEmpty(buckets) {
  const first = buckets.findIndex((b) => b.count > 0);
  if (first < 0) return [];
  let last = buckets.length - 1;
  while (buckets[last].count === 0) last--;
  return buckets.slice(first, last + 1);
}

function marksOf(buckets) {
  const counts = buckets.map((b) => b.count);
  return [50, 95, 99]
    .map((p) => ({ p, at: percentileBucket(counts, p) }))
    .filter((m) => m.at >= 0)
    .map((m) => ({ label: `p${m.p}`, ms: buckets[m.at].leMs ?? Number.MAX_VALUE }));
}

function legend(id, names) {
  fill(id, names.map((name, i) => item(name, `key s${i % 6}`)));
}

function empty(text) {
  const p = document.createElement("p");
  p.className = "muted empty";
  p.textContent = text;
  return p;
}

// ---- panels --------------------------------------------------------------------------------

function showOverview(o) {
  const badge = document.getElementById("status");
  badge.textContent = o.healthy ? "healthy" : "unhealthy";
  badge.className = `badge ${o.healthy ? "good" : "bad"}`;
  setText("overview.target", o.target);
  setText("overview.healthy", o.healthy ? "healthy" : "unhealthy", o.healthy);
  setText("overview.latencyMs", o.latencyMs === null ? "no answer" : duration(o.latencyMs), o.latencyMs);
  setText("overview.serverVersion", o.serverVersion ?? "–", o.serverVersion);
  setText("overview.role", o.role ?? "", o.role);
  setText("overview.migrations.applied", number(o.migrations?.applied), o.migrations?.applied);
  setText("overview.migrations.pending", number(o.migrations?.pending), o.migrations?.pending);
  setText("overview.sampledEveryS", String(o.sampledEveryMs / 1000));
  document.querySelector('[data-k="overview.migrations.pending"]').classList.toggle("bad", (o.migrations?.pending ?? 0) > 0);
  fill("problems", o.problems.map((p) => item(p, "bad")));
  fill("warnings", o.warnings.map((w) => item(w, "warn")));
  const times = o.series.map((p) => p.t);
  document.getElementById("latency-chart").replaceChildren(
    lineSvg(h, times, [{ name: "round trip (ms)", values: o.series.map((p) => p.latencyMs) }], {
      title: "round-trip latency",
      width: 1200,
      height: 170,
      format: (v) => duration(v),
      minMax: 0.1,
    }),
  );
  document.getElementById("updated").textContent = `sampled ${when(o.sampledAt)}`;
}

function showLedger(l) {
  setText("ledger.activeHolds.count", number(l.activeHolds.count), l.activeHolds.count);
  setText("ledger.activeHolds.tokens", number(l.activeHolds.tokens), l.activeHolds.tokens);
  for (const kind of ["credit", "deduct", "hold", "capture"]) setText(`ledger.totals.ops.${kind}`, number(l.totals.ops[kind]), l.totals.ops[kind]);
  const times = l.series.map((p) => p.t);
  const perSecond = (n) => n / (l.sampledEveryMs / 1000);
  document.getElementById("ops-chart").replaceChildren(
    lineSvg(h, times, l.kinds.map((k) => ({ name: k, values: l.series.map((p) => perSecond(p.ops[k])) })), { title: "operations per second", format: (v) => `${number(v)}/s` }),
  );
  legend("ops-legend", l.kinds);
  const codes = Object.keys(l.totals.refused).sort();
  document.getElementById("refusals-chart").replaceChildren(
    codes.length === 0
      ? empty("No refusals counted by this process.")
      : lineSvg(h, times, codes.map((c) => ({ name: c, values: l.series.map((p) => perSecond(p.refused[c] ?? 0)) })), { title: "refusals per second", format: (v) => `${number(v)}/s` }),
  );
  legend("refusals-legend", codes.map((c) => `${c}: ${number(l.totals.refused[c])}`));
  const merged = mergeLatency(l.process.latency);
  const opBuckets = merged ? bucketsOf(merged) : [];
  document.getElementById("op-latency").replaceChildren(
    opBuckets.length === 0
      ? empty("No token operations in this process: serve sees the database, not your app's calls. Run startSidecar(db, { dashboard: {} }) in the app to see its own.")
      : histogramSvg(h, opBuckets, { title: "operation latency", marks: marksOf(opBuckets) }),
  );
  const batches = l.batchSizes.counts.map((count, i) => ({ leMs: l.batchSizes.bounds[i] ?? null, count }));
  const shownBatches = trimEmpty(batches);
  document.getElementById("batch-chart").replaceChildren(
    shownBatches.length === 0
      ? empty("No ledger rows in the last minute.")
      : histogramSvg(h, shownBatches, { title: "batch sizes", xLabel: "rows per batch", label: (bound, previous) => (bound === null ? `>${previous}` : `≤${bound}`) }),
  );
  document.querySelector("#recent tbody").replaceChildren(
    ...l.recent.map((r) => row(cell(when(r.at), "mono time"), cell(r.userId, "mono"), cell(r.operation), cell(number(r.amount), "num"), cell(r.reason))),
  );
  if (l.lastVerify) showVerify(l.lastVerify);
}

function mergeLatency(latencies) {
  if (latencies.length === 0) return null;
  const counts = latencies[0].counts.map((_, i) => latencies.reduce((sum, l) => sum + l.counts[i], 0));
  return { boundsMs: latencies[0].boundsMs, counts };
}

function showVerify(run) {
  const r = run.report;
  const result = document.getElementById("verify-result");
  result.textContent = r.ok
    ? `✓ ${number(r.checked)} balances match their ledger; holds consistent (${when(run.ranAt)}, ${run.durationMs} ms)`
    : `✗ ${r.drifting.length} balance(s) drift, ${r.holdViolations.length} hold problem(s) (${when(run.ranAt)})`;
  result.className = r.ok ? "good" : "bad";
  result.dataset.v = String(r.checked);
  fill("verify-problems", [
    ...r.drifting.map((d) => item(`${d.userId}: balance ${d.balance}, ledger ${d.ledgerSum} (${d.difference > 0 ? "+" : ""}${d.difference})`, "bad")),
    ...r.holdViolations.map((v) => item(`${v.rule}: ${v.userId} ${v.holdId ?? ""} ${v.detail}`, "bad")),
  ]);
}

document.getElementById("verify").addEventListener("click", async () => {
  const button = /** @type {HTMLButtonElement} */ (document.getElementById("verify"));
  button.disabled = true;
  document.getElementById("verify-result").textContent = "checking…";
  try {
    showVerify(await call("api/verify", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
  } catch (error) {
    document.getElementById("verify-result").textContent = String(error.message);
  } finally {
    button.disabled = false;
  }
});

function showQueries(q) {
  const rows = q.recorded.map((r) => {
    const buckets = bucketsOf(r.histogram);
    const spread = document.createElement("td");
    spread.className = "spark";
    spread.append(histogramSvg(h, buckets, { title: `${r.name}: latency`, width: 320, height: 120, xLabel: "", marks: [{ label: "p50", ms: r.p50Ms }, { label: "p95", ms: r.p95Ms }] }));
    return row(cell(r.name, "mono"), cell(number(r.count), "num"), cell(number(r.failed), "num"), cell(duration(r.p50Ms), "num"), cell(duration(r.p95Ms), "num"), cell(duration(r.maxMs), "num"), spread);
  });
  document.querySelector("#slow tbody").replaceChildren(...rows);
  document.getElementById("slow-empty").hidden = rows.length > 0;
  fill(
    "probes",
    q.probes.map((p) => {
      const box = document.createElement("details");
      box.className = `probe ${p.usesIndex ? "good" : "bad"}`;
      const summary = document.createElement("summary");
      const verdict = document.createElement("span");
      verdict.className = `badge ${p.usesIndex ? "good" : "bad"}`;
      verdict.textContent = p.usesIndex ? "index" : "no index";
      const name = document.createElement("span");
      name.className = "mono";
      name.textContent = visibleText(p.name);
      const figures = document.createElement("span");
      figures.className = "muted";
      figures.textContent = `p50 ${duration(p.p50Ms)} · p95 ${duration(p.p95Ms)} · ${number(p.rows)} rows${p.indexes.length ? ` · ${p.indexes.join(", ")}` : ""}`;
      summary.append(verdict, " ", name, " ", figures);
      const plan = document.createElement("pre");
      plan.textContent = visibleText(p.plan.join("\n"));
      box.append(summary, plan);
      if (p.suggestion) {
        const fix = document.createElement("p");
        fix.className = "warn";
        fix.textContent = `fix: ${p.suggestion}`;
        box.append(fix);
      }
      return box;
    }),
  );
}

function showSchema(s) {
  document.querySelector("#migrations tbody").replaceChildren(
    ...s.migrations.map((m) =>
      row(cell(m.tag, "mono"), cell(m.state === "partial" ? `partial (${m.stepsDone} of ${m.steps} steps)` : m.state, m.state === "applied" ? "good" : "bad"), cell(m.appliedAt ? when(m.appliedAt) : "–", "mono time")),
    ),
  );
  document.querySelector("#tables tbody").replaceChildren(
    ...s.tables.map((t) => row(cell(t.table, "mono"), cell(t.rows === null ? "–" : `${t.estimated ? "~" : ""}${number(t.rows)}`, "num"), cell(bytes(t.bytes), "num"))),
  );
  fill("invalid", s.invalidIndexes.length ? s.invalidIndexes.map((i) => item(`${i.index} on ${i.table}`, "bad")) : [item("none", "good")]);
  fill(
    "notvalid",
    s.notValidConstraints.length
      ? s.notValidConstraints.map((c) => item(`${c.constraint} on ${c.table}${c.migration ? ` (validated by ${c.migration})` : ""}`, "warn"))
      : [item("none", "good")],
  );
}

const SHOW = { overview: showOverview, ledger: showLedger, queries: showQueries, schema: showSchema };

async function refresh(name) {
  const section = document.getElementById(name);
  try {
    const data = await call(`api/${name}`);
    SHOW[name](data);
    section.classList.remove("stale");
    section.dataset.loaded = "true";
  } catch (error) {
    section.classList.add("stale");
    if (name === "overview") {
      const badge = document.getElementById("status");
      // a refusal says why (the dashboard off, a wrong address); a failed fetch means serve is gone
      badge.textContent = error instanceof TypeError ? "no answer from briefdb serve" : error.message;
      badge.className = "badge bad";
    }
  }
}

for (const [name, every] of Object.entries(POLL_MS)) {
  void refresh(name);
  setInterval(() => {
    if (!document.hidden) void refresh(name);
  }, every);
}
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) for (const name of Object.keys(POLL_MS)) void refresh(name);
});
