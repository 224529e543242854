// Cron: the job table with each job's schedule and next run here (Run now triggers it), and
// the run history, newest first, filtered by job and status from the URL.
import { api } from "../api.js";
import { every, POLL_MS } from "../poll.js";
import { badge, card, clear, errorBox, h, table, time } from "../ui.js";

const STATUSES = ["", "queued", "running", "retrying", "succeeded", "failed", "cancelled", "skipped"];

export async function render(main, { query, navigate }) {
  document.title = "Cron · apiary";
  const jobsBox = h("div", {});
  const runsBox = h("div", {});
  const problem = h("div", {});
  const status = h("select", { id: "f-run-status" }, STATUSES.map((s) => h("option", { value: s, selected: s === (query.get("status") || "") }, s || "any")));
  const job = h("input", { id: "f-job", value: query.get("job") || "", maxlength: 100 });
  const filters = h("form", { class: "inline", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (job.value.trim()) next.set("job", job.value.trim());
    if (status.value) next.set("status", status.value);
    navigate(`/cron${next.size ? `?${next}` : ""}`);
  } }, h("label", { for: "f-job" }, "Job", job), h("label", { for: "f-run-status" }, "Status", status), h("button", { type: "submit" }, "Filter"));
  main.append(h("h1", {}, "Cron"), problem, card("Jobs", jobsBox), card("Runs", filters, runsBox));

  const trigger = async (name, button) => {
    button.disabled = true;
    clear(problem);
    try {
      await api("/trigger", { method: "POST", body: { job: name } });
      await runs();
    } catch (err) {
      clear(problem, errorBox(err));
    } finally {
      button.disabled = false;
    }
  };
  try {
    const table_ = await api("/api/cron/jobs");
    clear(jobsBox, h("p", { class: "muted" }, `Environment ${table_.environment}`), table([
      { label: "Job", cell: (j) => h("span", {}, h("strong", {}, j.name), h("br"), h("code", { class: "muted" }, `${j.method} ${j.path}`)) },
      { label: "Schedule", cell: (j) => (j.schedule ? h("code", {}, j.schedule) : h("span", { class: "muted" }, "manual only")) },
      { label: "Next run", cell: (j) => time(j.next_run) },
      { label: "Last run", cell: (j) => (j.last_run ? h("a", { href: `/cron/runs/${j.last_run.id}` }, badge(j.last_run.status)) : "—") },
      { label: "", cell: (j) => { const b = h("button", { type: "button" }, "Run now"); b.addEventListener("click", () => trigger(j.name, b)); return b; } },
    ], table_.jobs, { empty: "No jobs in src/cron/jobs.py." }));
  } catch (err) {
    clear(jobsBox, errorBox(err));
  }
  const params = new URLSearchParams();
  for (const key of ["job", "status"]) if (query.get(key)) params.set(key, query.get(key));
  async function runs() {
    try {
      const { runs: rows } = await api(`/api/cron/runs?${params}`);
      clear(runsBox, table([
        { label: "Run", cell: (r) => h("a", { href: `/cron/runs/${r.id}` }, r.job) },
        { label: "Status", cell: (r) => badge(r.status) },
        { label: "Source", cell: (r) => r.source },
        { label: "Attempts", cell: (r) => r.attempts_made },
        { label: "Scheduled", cell: (r) => time(r.scheduled_time) },
        { label: "Error", class: "hide-narrow", cell: (r) => h("span", { class: "mono" }, (r.error || "").slice(0, 120)) },
      ], rows, { empty: "No runs yet: they appear when a Cron Trigger fires or you run a job now." }));
    } catch (err) {
      clear(runsBox, errorBox(err));
    }
  }
  return every(POLL_MS, runs);
}
