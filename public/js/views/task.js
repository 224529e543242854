// One task: its fields and its attempts as a timeline (each attempt's span on a shared axis).
import { api } from "../api.js";
import { badge, card, empty, h, kv, time } from "../ui.js";

function timeline(attempts) {
  if (!attempts.length) return empty("No attempt yet: the task waits for a healthy server.");
  const starts = attempts.map((a) => Date.parse(a.started_at));
  const ends = attempts.map((a) => Date.parse(a.ended_at || new Date().toISOString()));
  const t0 = Math.min(...starts);
  const span = Math.max(1, Math.max(...ends) - t0);
  return h("ol", { class: "timeline" }, attempts.map((a, i) => {
    const bar = h("span", {});
    bar.style.left = `${(100 * (starts[i] - t0)) / span}%`; // CSSOM, which the CSP allows
    bar.style.width = `${(100 * (ends[i] - starts[i])) / span}%`;
    return h("li", {},
      h("div", {}, h("strong", {}, `Attempt ${a.attempt}`), " ", badge(a.outcome || "running"), " on ", h("code", {}, a.server_id)),
      h("div", { class: "bar", "aria-hidden": "true" }, bar),
      h("div", { class: "muted" }, time(a.started_at), " → ", a.ended_at ? time(a.ended_at) : "still running",
        a.ended_at ? ` (${((ends[i] - starts[i]) / 1000).toFixed(1)} s)` : ""),
      a.error ? h("div", { class: "mono" }, a.error) : null);
  }));
}

export async function render(main, { params }) {
  const task = await api(`/api/task/${params[0]}`);
  document.title = `${task.type} · Tasks · apiary`;
  main.append(h("h1", {}, `Task ${task.type}`),
    h("div", { class: "grid" },
      card("Task", kv([
        ["Id", h("code", {}, task.id)], ["Status", badge(task.status)], ["Priority", task.priority],
        ["Attempts", `${(task.attempts || []).length} of ${task.max_attempts}`],
        ["Created", time(task.created_at)], ["Updated", time(task.updated_at)],
        ["Error", task.error || "—"],
      ])),
      card("Attempts", timeline(task.attempts || []))),
    card("Result", h("pre", { class: "mono scroll" }, JSON.stringify(task.result ?? null, null, 2))));
}
