// Bar charts as hand-written SVG (a few hundred bytes instead of a chart library): one bar per
// day, an optional second series drawn inside the first (errors within requests), a scale on
// the left, and the figures as each bar's <title> and in a table for screen readers. Built
// with createElementNS and presentation attributes only, so the CSP needs no exception. Only
// the fleet's views import it: no other page loads it.
import { h } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 640;
const H = 180;
const PAD = { left: 48, right: 8, top: 10, bottom: 24 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function nice(max) {
  if (max <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * step >= max) return m * step;
  return 10 * step;
}

function short(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return `${+value.toFixed(2)}`;
}

// `days`: [{date, value, inner?}]; `inner` (e.g. errors) is drawn over the bar's foot.
export function barChart(label, days, { unit = "", innerLabel = null } = {}) {
  if (!days.length) return h("p", { class: "empty" }, `No ${label.toLowerCase()} yet: usage is polled hourly.`);
  const top = nice(Math.max(...days.map((d) => d.value)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / days.length;
  const bar = Math.max(2, Math.min(28, slot * 0.7));
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" });
  for (const tick of [0, top / 2, top]) {
    svg.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: "grid-line" }),
      s("text", { x: PAD.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, short(tick)));
  }
  days.forEach((d, i) => {
    const x = PAD.left + i * slot + (slot - bar) / 2;
    const parts = [`${d.date}: ${short(d.value)}${unit}`];
    if (innerLabel && d.inner) parts.push(`${d.inner} ${innerLabel}`);
    svg.append(s("rect", { x, y: y(d.value), width: bar, height: Math.max(0, plotH + PAD.top - y(d.value)), class: "bar" },
      s("title", {}, parts.join(", "))));
    if (d.inner) {
      svg.append(s("rect", { x, y: y(d.inner), width: bar, height: Math.max(1, plotH + PAD.top - y(d.inner)), class: "bar inner" }));
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 8) === 0) {
      svg.append(s("text", { x: x + bar / 2, y: H - 6, "text-anchor": "middle", class: "axis" }, d.date.slice(5)));
    }
  });
  const figures = h("table", { class: "sr-only" }, h("caption", {}, label),
    h("tbody", {}, days.map((d) => h("tr", {}, h("th", {}, d.date), h("td", {}, `${d.value}${unit}`), innerLabel ? h("td", {}, `${d.inner || 0} ${innerLabel}`) : null))));
  return h("figure", { class: "chart-box" }, svg, figures,
    h("figcaption", { class: "muted" }, label, innerLabel ? h("span", { class: "key" }, ` · ${innerLabel} in red`) : null));
}

// A rollout's steps as a row of percentages: passed, current, to come.
export function steps(rollout) {
  return h("ol", { class: "steps", "aria-label": "rollout steps" }, rollout.steps.map((pct, i) => {
    let state = "todo";
    if (i < rollout.step || rollout.status === "succeeded") state = "done";
    else if (i === rollout.step) state = rollout.status === "running" ? "now" : rollout.status === "rolled_back" || rollout.status === "aborted" ? "failed" : "done";
    return h("li", { class: `step ${state}`, "aria-current": state === "now" ? "step" : null }, `${pct}%`);
  }));
}
