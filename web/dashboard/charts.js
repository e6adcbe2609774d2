// briefdb's charts: a latency histogram and a line chart as SVG, drawn through a node factory
// `h(tag, attributes, children)` so that one piece of code draws in the browser (DOM nodes,
// text through textContent) and in Node for the HTML reports (escaped markup). No dependency.
// Colours come from CSS classes (s0…s5, bar, mark), so both themes and a strict CSP apply.

/** Bucket label: "≤0.25 ms", "≤2.5 s", ">10 s". */
export function bucketLabel(bound, previous) {
  if (bound === null) return `>${duration(previous)}`;
  return `≤${duration(bound)}`;
}

/** 0.25 → "0.25 ms", 2500 → "2.5 s". */
export function duration(ms) {
  if (ms >= 1000) return `${trim(ms / 1000)} s`;
  return `${trim(ms)} ms`;
}

/** Three significant figures at most above 1 (638, 22.5, 1.57), microseconds below (0.683). */
function trim(n) {
  const places = n >= 100 ? 0 : n >= 10 ? 1 : n >= 1 ? 2 : 3;
  return String(Math.round(n * 10 ** places) / 10 ** places);
}

/** The index of the bucket holding the p-th percentile (nearest rank) of bucket counts, or -1. */
export function percentileBucket(counts, p) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return -1;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= rank) return i;
  }
  return counts.length - 1;
}

/**
 * A histogram: `buckets` [{leMs, count}] (leMs null: over the last bound); `marks` [{label, ms}]
 * drawn as lines at the bucket holding each value (p50, p95, p99); `label(bound, previous)` names
 * a bucket (default: durations). Returns h's <svg>.
 */
export function histogramSvg(h, buckets, options = {}) {
  const width = options.width ?? 640;
  const height = options.height ?? 200;
  const marks = options.marks ?? [];
  const pad = { left: 44, right: 12, top: 16 + 12 * marks.length, bottom: 34 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const step = buckets.length === 0 ? plotW : plotW / buckets.length;
  const nodes = [];
  nodes.push(h("title", {}, options.title ?? "latency histogram"));
  // counts are whole: a middle line only where it falls on a whole number
  for (const tick of max % 2 === 0 ? [0, 0.5, 1] : [0, 1]) {
    const y = pad.top + plotH - tick * plotH;
    nodes.push(h("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y, y2: y }, []));
    nodes.push(h("text", { class: "axis", x: pad.left - 6, y: y + 4, "text-anchor": "end" }, String(tick * max)));
  }
  let previous = 0;
  buckets.forEach((bucket, i) => {
    const barH = bucket.count === 0 ? 0 : Math.max(1.5, (bucket.count / max) * plotH);
    const x = pad.left + i * step;
    const label = (options.label ?? bucketLabel)(bucket.leMs, previous);
    nodes.push(
      h("rect", { class: "bar", x: x + 2, y: pad.top + plotH - barH, width: Math.max(1, step - 4), height: barH, "data-count": bucket.count }, [
        h("title", {}, `${label}: ${bucket.count}`),
      ]),
    );
    if (bucket.count > 0) nodes.push(h("text", { class: "count", x: x + step / 2, y: pad.top + plotH - barH - 4, "text-anchor": "middle" }, String(bucket.count)));
    nodes.push(h("text", { class: "axis", x: x + step / 2, y: height - pad.bottom + 14, "text-anchor": "middle" }, label));
    if (bucket.leMs !== null) previous = bucket.leMs;
  });
  const placed = new Map();
  marks.forEach((mark, i) => {
    const at = buckets.findIndex((b) => b.leMs === null || mark.ms <= b.leMs);
    if (at < 0) return;
    const row = placed.get(at) ?? 0;
    placed.set(at, row + 1);
    const x = pad.left + at * step + step / 2 + row * 4;
    nodes.push(h("line", { class: `mark m${i % 3}`, x1: x, x2: x, y1: 14 + i * 12, y2: pad.top + plotH }, []));
    const right = x > pad.left + plotW * 0.6; // a label near the right edge reads leftwards
    nodes.push(h("text", { class: `marklabel m${i % 3}`, x: right ? x - 4 : x + 4, y: 11 + i * 12, "text-anchor": right ? "end" : "start" }, `${mark.label} ${duration(mark.ms)}`));
  });
  const xLabel = options.xLabel ?? "latency (bucket upper bound)";
  if (xLabel !== "") nodes.push(h("text", { class: "axis", x: width - pad.right, y: height - 4, "text-anchor": "end" }, xLabel));
  return h("svg", { class: "chart histogram", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": options.title ?? "latency histogram" }, nodes);
}

/**
 * A line chart over time: `times` (epoch ms) and `series` [{name, values (null: no sample)}],
 * classes s0, s1, … by position. Returns h's <svg>.
 */
export function lineSvg(h, times, series, options = {}) {
  const width = options.width ?? 640;
  const height = options.height ?? 180;
  const pad = { left: 64, right: 12, top: 12, bottom: 24 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const values = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = niceMax(Math.max(options.minMax ?? 0, ...values, 0));
  const t0 = times[0] ?? 0;
  const t1 = times[times.length - 1] ?? t0 + 1;
  const x = (t) => pad.left + (t1 === t0 ? plotW : ((t - t0) / (t1 - t0)) * plotW);
  const y = (v) => pad.top + plotH - (max === 0 ? 0 : (v / max) * plotH);
  const format = options.format ?? ((v) => String(v));
  const nodes = [h("title", {}, options.title ?? "chart")];
  for (const tick of [0, 0.5, 1]) {
    const v = tick * max;
    nodes.push(h("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }, []));
    nodes.push(h("text", { class: "axis", x: pad.left - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  if (times.length > 1) {
    nodes.push(h("text", { class: "axis", x: pad.left, y: height - 6, "text-anchor": "start" }, clock(t0)));
    nodes.push(h("text", { class: "axis", x: width - pad.right, y: height - 6, "text-anchor": "end" }, clock(t1)));
  }
  series.forEach((s, i) => {
    let d = "";
    let pen = "M";
    s.values.forEach((v, j) => {
      if (v === null) {
        pen = "M";
        return;
      }
      d += `${pen}${x(times[j]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = "L";
    });
    if (d !== "") nodes.push(h("path", { class: `line s${i % 6}`, d }, [h("title", {}, s.name)]));
    // the newest sample as a dot, so that a series of one sample shows too
    const lastAt = s.values.map((v) => v !== null).lastIndexOf(true);
    if (lastAt >= 0) nodes.push(h("circle", { class: `dot s${i % 6}`, cx: x(times[lastAt]).toFixed(1), cy: y(s.values[lastAt]).toFixed(1), r: 3 }, [h("title", {}, `${s.name}: ${format(s.values[lastAt])}`)]));
  });
  return h("svg", { class: "chart line", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": options.title ?? "chart" }, nodes);
}

function niceMax(v) {
  if (v <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * power) return m * power;
  return 10 * power;
}

function clock(t) {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}:${String(d.getSeconds()).padStart(2, "0")}`;
}

/** h for the browser: DOM nodes, text only through textContent. */
export function domFactory(document) {
  const NS = "http://www.w3.org/2000/svg";
  return (tag, attributes, children) => {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, visibleText(value));
    if (typeof children === "string") node.textContent = visibleText(children);
    else for (const child of children) node.append(child);
    return node;
  };
}

/** h for Node: markup, every attribute and text escaped. */
export function markupFactory() {
  return (tag, attributes, children) => {
    const attrs = Object.entries(attributes)
      .map(([name, value]) => ` ${name}="${escapeMarkup(visibleText(value))}"`)
      .join("");
    const inner = typeof children === "string" ? escapeMarkup(visibleText(children)) : children.join("");
    const xmlns = tag === "svg" ? ' xmlns="http://www.w3.org/2000/svg"' : "";
    return `<${tag}${xmlns}${attrs}>${inner}</${tag}>`;
  };
}

/**
 * Stored text as it is, but for the characters that would not show as themselves: controls, and the
 * invisible ones that reorder the text around them (bidirectional embeddings, overrides, isolates
 * and marks). A user id holding U+202E would show its rest reversed; it shows "\u202e" instead.
 * Tabs and newlines stay (a plan's lines).
 */
export function visibleText(text) {
  return String(text).replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export function escapeMarkup(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
