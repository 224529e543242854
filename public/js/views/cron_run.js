// One cron run with every attempt.
import { api } from "../api.js";
import { badge, card, h, kv, table, time } from "../ui.js";

export async function render(main, { params }) {
  const run = await api(`/api/cron/runs/${params[0]}`);
  document.title = `${run.job} run · Cron · apiary`;
  main.append(h("h1", {}, `Run of ${run.job}`),
    card("Run", kv([
      ["Id", h("code", {}, run.id)], ["Status", badge(run.status)], ["Source", run.source],
      ["Scheduled", time(run.scheduled_time)], ["Ended", time(run.ended_at)],
      ["Correlation id", h("code", {}, run.correlation_id)], ["Error", run.error || "—"],
    ])),
    card("Attempts", table([
      { label: "#", cell: (a) => a.attempt },
      { label: "Outcome", cell: (a) => badge(a.outcome || "running") },
      { label: "HTTP", cell: (a) => a.http_status ?? "—" },
      { label: "Started", cell: (a) => time(a.started_at) },
      { label: "Duration", cell: (a) => (a.duration_ms == null ? "—" : `${a.duration_ms} ms`) },
      { label: "Error", cell: (a) => h("span", { class: "mono" }, a.error || "") },
    ], run.attempts, { empty: "No attempt yet." })));
}
