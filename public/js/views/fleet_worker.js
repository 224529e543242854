// One managed Worker: what it is and where it runs, its versions with their share of traffic,
// its latest rollout step by step with every decision, its usage per day and cost, health
// changes and drift. Polls once a minute, faster (5 s) while a rollout runs.
import { api, ApiError } from "../api.js";
import { barChart, steps } from "../chart.js";
import { every, POLL_MS } from "../poll.js";
import { badge, card, clear, empty, errorBox, h, kv, table, time } from "../ui.js";

const usd = (v) => `$${Number(v || 0).toFixed(6)}`;

function rolloutCard(rollout) {
  if (!rollout) return card("Rollout", empty("No rollout yet."));
  return card("Rollout",
    h("p", {}, badge(rollout.status), " ", h("code", {}, rollout.id), " ",
      h("span", { class: "muted" }, `${rollout.stable_version.slice(0, 8)} → ${rollout.new_version.slice(0, 8)}, by ${rollout.actor}`)),
    steps(rollout),
    rollout.status === "running"
      ? h("p", { class: "muted" }, `Step ${rollout.step + 1} at ${rollout.percentage}%, ${rollout.phase}; next decision `, time(rollout.next_decision_at))
      : h("p", {}, rollout.reason || ""),
    table([
      { label: "Step", cell: (d) => `${d.step} (${d.percentage}%)` },
      { label: "Verdict", cell: (d) => badge(d.verdict) },
      { label: "New version", class: "hide-narrow", cell: (d) => `${d.new.errors}/${d.new.requests} errors, /health ${d.new.probes_passed}/${d.new.probes}` },
      { label: "Why", cell: (d) => d.reason },
      { label: "When", class: "hide-narrow", cell: (d) => time(d.at) },
    ], rollout.history, { empty: "No step judged yet." }));
}

export async function render(main, { params }) {
  const [name] = params;
  document.title = `${name} · Fleet · apiary`;
  const body = h("div", {});
  main.append(h("h1", {}, h("a", { href: "/fleet" }, "Fleet"), " / ", name), body);
  let fast = false;
  const refresh = async () => {
    let worker;
    let usage;
    let rollout = null;
    try {
      [worker, usage] = await Promise.all([api(`/api/workers/${name}`), api(`/api/workers/${name}/usage`)]);
      rollout = await api(`/api/workers/${name}/rollouts`).catch((err) => {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      });
    } catch (err) {
      clear(body, errorBox(err));
      return;
    }
    fast = Boolean(rollout && rollout.status === "running");
    const month = usage.month;
    clear(body,
      h("div", { class: "grid" },
        card("Worker", kv([
          ["Status", badge(worker.status)],
          ["URL", worker.url ? h("code", {}, worker.url) : "—"],
          ["Type", `${worker.type}${worker.customer_id ? ` (customer ${worker.customer_id})` : ""}`],
          ["Environment", worker.environment],
          ["Last deployed", time(worker.last_deployed_at)],
          ["Last health check", time(worker.last_health_check)],
          ["Compatibility date", worker.compatibility_date || "—"],
          ["Bindings", worker.bindings.map((b) => `${b.name} (${b.type})`).join(", ") || "none"],
          ["Drift", worker.drift.length ? h("span", { class: "s-unhealthy" }, worker.drift.map((d) => d.field).join(", ")) : "none"],
        ])),
        card("Usage and cost", kv([
          ["Requests, last 30 days", `${usage.totals.requests} (${usage.totals.errors} errors)`],
          ["CPU time", `${usage.totals.cpu_time_ms} ms`],
          ["Cost, last 30 days", usd(usage.totals.cost_usd)],
          ["Month to date", usd(month.usage_usd)],
          [`Forecast for ${month.month}`, usd(month.forecast_usage_usd)],
        ]))),
      rolloutCard(rollout),
      card("Usage per day",
        barChart("Requests per day", usage.rows.map((r) => ({ date: r.period_start, value: r.requests, inner: r.errors })), { innerLabel: "errors" }),
        barChart("CPU time per day (ms)", usage.rows.map((r) => ({ date: r.period_start, value: r.cpu_time_ms })), { unit: " ms" })),
      card("Versions", table([
        { label: "#", cell: (v) => v.number },
        { label: "Version", cell: (v) => h("code", {}, v.id) },
        { label: "Traffic", cell: (v) => (v.percentage ? h("strong", {}, `${v.percentage}%`) : h("span", { class: "muted" }, "0%")) },
        { label: "Author", class: "hide-narrow", cell: (v) => v.author },
        { label: "Message", class: "hide-narrow", cell: (v) => v.message },
        { label: "Created", cell: (v) => time(v.created_on) },
      ], worker.versions, { empty: "No versions listed." })),
      card("Health changes", table([
        { label: "To", cell: (c) => badge(c.to_status) },
        { label: "Why", cell: (c) => c.reason },
        { label: "When", cell: (c) => time(c.at) },
      ], worker.health.changes, { empty: "No change since it was first checked." })));
  };
  const stop = every(POLL_MS, refresh);
  const tick = setInterval(() => { if (fast && !document.hidden) refresh(); }, 5000);
  return () => { stop(); clearInterval(tick); };
}
