// Browser checks: recent runs with their assertions' verdicts, the suites (Run a suite now),
// and the plan's limits as a gauge with its 85% warning line.
import { api } from "../api.js";
import { every, POLL_MS } from "../poll.js";
import { badge, card, clear, errorBox, h, table, time } from "../ui.js";

function gauge(label, used, limit) {
  const share = limit ? Math.min(1, used / limit) : 0;
  const fill = h("div", { class: "fill" });
  fill.style.width = `${share * 100}%`; // CSSOM, which the CSP allows
  const line = h("div", { class: "line", title: "85%: the warning line" });
  line.style.left = "85%";
  return h("div", {}, h("div", {}, `${label}: ${used} of ${limit}`),
    h("div", { class: `gauge${share >= 0.85 ? " warn" : ""}`, role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": limit, "aria-valuenow": used }, fill, line));
}

export async function render(main, { navigate }) {
  document.title = "Browser checks · apiary";
  const runsBox = h("div", {});
  const suitesBox = h("div", {});
  const limitsBox = h("div", {});
  const problem = h("div", {});
  main.append(h("h1", {}, "Browser checks"), problem,
    h("div", { class: "grid" }, card("Limits", limitsBox), card("Suites", suitesBox)), card("Runs", runsBox));
  const runSuite = async (name, button) => {
    button.disabled = true;
    clear(problem);
    try {
      const { suite_run: run } = await api("/api/browser_tests/run_suite", { method: "POST", body: { suite_name: name } });
      navigate(`/browser/${run.id}`);
    } catch (err) {
      clear(problem, errorBox(err));
      button.disabled = false;
    }
  };
  Promise.all([api("/api/browser_tests/limits"), api("/api/browser_tests/suites")]).then(([limits, { suites }]) => {
    clear(limitsBox, gauge("Browsers in use", limits.browsers_in_use ?? limits.in_use ?? 0, limits.max_concurrency ?? limits.concurrency_limit ?? 0),
      gauge("Requests this minute", limits.requests_this_minute ?? 0, limits.requests_per_minute ?? 0),
      limits.warning ? h("p", { class: "error" }, "At or above 85% of the plan's limits.") : null);
    clear(suitesBox, table([
      { label: "Suite", cell: (s) => h("span", {}, h("strong", {}, s.name), h("br"), h("span", { class: "muted" }, s.description)) },
      { label: "Checks", cell: (s) => s.tests.map((t) => t.test_type).join(", ") },
      { label: "", cell: (s) => { const b = h("button", { type: "button" }, "Run"); b.addEventListener("click", () => runSuite(s.name, b)); return b; } },
    ], suites, { empty: "No suites: install apiary-self with `apiary self-check install`." }));
  }).catch((err) => clear(limitsBox, errorBox(err)));
  return every(POLL_MS, async () => {
    try {
      const { test_runs: runs } = await api("/api/browser_tests?limit=50");
      clear(runsBox, table([
        { label: "Run", cell: (r) => h("a", { href: `/browser/${r.id}` }, r.suite_name && r.test_type === "suite" ? `suite ${r.suite_name}` : r.test_type) },
        { label: "Status", cell: (r) => badge(r.status) },
        { label: "Assertions", cell: (r) => `${r.assertions.filter((a) => a.passed).length} / ${r.assertions.length} passed` },
        { label: "Target", class: "hide-narrow", cell: (r) => h("code", {}, r.target_url) },
        { label: "When", cell: (r) => time(r.completed_at || r.created_at) },
      ], runs, { empty: "No runs yet: POST /api/browser_tests, or run a suite." }));
    } catch (err) {
      clear(runsBox, errorBox(err));
    }
  });
}
