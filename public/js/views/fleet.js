// Fleet: the managed Workers (status, deployment, health, today's usage), the rollouts in
// progress, the account's usage per day (requests with errors, CPU time), the cost month to
// date with the forecast to the month's end, and the plan's limits with the 85% line. Polls
// the inventory and usage once a minute (ETag'd, from D1); the limits once per visit (they
// ask Cloudflare's API).
import { api } from "../api.js";
import { barChart } from "../chart.js";
import { every, POLL_MS } from "../poll.js";
import { ago, badge, card, clear, errorBox, h, kv, table, time } from "../ui.js";

const usd = (v) => `$${Number(v || 0).toFixed(v >= 1 ? 2 : 6)}`;

function deployment(shares) {
  if (!shares || !shares.length) return h("span", { class: "muted" }, "—");
  return h("span", { class: "mono" }, shares.map((v) => `${v.version_id.slice(0, 8)} ${v.percentage}%`).join(" · "));
}

function costCard(usage) {
  const m = usage.month;
  return card("Cost",
    h("div", { class: "numbers" },
      h("div", {}, h("strong", { id: "cost-mtd" }, usd(m.bill_usd)), "month to date"),
      h("div", {}, h("strong", { id: "cost-forecast" }, usd(m.forecast_bill_usd)), `forecast for ${m.month}`)),
    kv([
      ["Plan", usage.plan],
      ["Requests (month)", `${m.requests.toLocaleString()} → ${m.forecast_requests.toLocaleString()} forecast`],
      ["CPU time (month)", `${Math.round(m.cpu_ms).toLocaleString()} ms`],
      ["Usage at list price", `${usd(m.usage_usd)} (forecast ${usd(m.forecast_usage_usd)})`],
    ]),
    h("p", { class: "muted" }, `Day ${m.days_elapsed} of ${m.days_in_month}; the forecast follows the last 7 days' mean. Prices: Cloudflare's published table.`));
}

function gauge(name, reading) {
  const share = reading.limit ? Math.min(1, reading.used / reading.limit) : 0;
  const fill = h("div", { class: "fill" });
  fill.style.width = `${share * 100}%`;
  const line = h("div", { class: "line", title: "85%: the warning line" });
  line.style.left = "85%";
  return h("div", {}, h("div", {}, `${name.replace(/_/g, " ")}: ${reading.used} of ${reading.limit}`),
    h("div", { class: `gauge${reading.warning ? " warn" : ""}`, role: "meter", "aria-label": name, "aria-valuemin": 0, "aria-valuemax": reading.limit, "aria-valuenow": reading.used }, fill, line));
}

export async function render(main) {
  document.title = "Fleet · apiary";
  const problem = h("div", {});
  const costBox = h("div", {});
  const limitsBox = card("Limits", h("p", { class: "muted" }, "Loading…"));
  const charts = h("div", {});
  const rollouts = h("div", {});
  const workers = h("div", {});
  main.append(h("h1", {}, "Fleet"), problem,
    h("div", { class: "grid" }, costBox, limitsBox),
    card("Usage per day", charts), card("Rollouts in progress", rollouts), card("Workers", workers));
  api("/api/fleet/limits").then((limits) => {
    clear(limitsBox, h("h2", {}, "Limits"),
      ...Object.entries(limits.limits).map(([name, reading]) => gauge(name, reading)),
      limits.warning ? h("p", { class: "error" }, "At or above 85% of a plan limit.") : h("p", { class: "muted" }, `Plan: ${limits.plan}. A warning and one alert at ${limits.warn_at_percent}%.`));
  }).catch((err) => clear(limitsBox, h("h2", {}, "Limits"), errorBox(err)));
  return every(POLL_MS, async () => {
    let listed;
    let usage;
    try {
      [listed, usage] = await Promise.all([api("/api/workers?limit=200"), api("/api/fleet/usage?days=30")]);
    } catch (err) {
      clear(problem, errorBox(err));
      return;
    }
    clear(problem);
    clear(costBox, costCard(usage));
    clear(charts,
      barChart("Requests per day", usage.days.map((d) => ({ date: d.date, value: d.requests, inner: d.errors })), { innerLabel: "errors" }),
      barChart("CPU time per day (ms)", usage.days.map((d) => ({ date: d.date, value: d.cpu_time_ms })), { unit: " ms" }));
    const running = listed.workers.filter((w) => w.rollout && w.rollout.status === "running");
    clear(rollouts, table([
      { label: "Worker", cell: (w) => h("a", { href: `/fleet/${w.name}` }, w.name) },
      { label: "Deployment now", cell: (w) => deployment(w.active_deployment) },
      { label: "Rollout", cell: (w) => h("code", {}, w.rollout.id) },
    ], running, { empty: "No rollout is running. POST /api/workers/{name}/rollouts starts one." }));
    clear(workers, table([
      { label: "Worker", cell: (w) => h("span", {}, h("a", { href: `/fleet/${w.name}` }, h("strong", {}, w.name)), h("br"), h("span", { class: "muted" }, `${w.type} · ${w.environment}`)) },
      { label: "Status", cell: (w) => badge(w.status) },
      { label: "Deployment", class: "hide-narrow", cell: (w) => deployment(w.active_deployment) },
      { label: "Checked", class: "hide-narrow", cell: (w) => h("span", { title: w.last_health_check || "" }, ago(w.last_health_check)) },
      { label: "Today", cell: (w) => `${w.usage_today.requests} req` + (w.usage_today.errors ? `, ${w.usage_today.errors} err` : "") },
      { label: "Deployed", class: "hide-narrow", cell: (w) => time(w.last_deployed_at) },
    ], listed.workers, { empty: "No managed Workers yet: POST /api/workers, or POST /api/fleet/sync to import the account's." }));
  });
}
