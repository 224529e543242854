// One browser check run: its assertions, its screenshot inline, and a suite's child runs.
import { api } from "../api.js";
import { every } from "../poll.js";
import { badge, card, clear, errorBox, h, kv, table, time } from "../ui.js";

const DONE = new Set(["passed", "failed", "error"]);

function assertions(rows) {
  return table([
    { label: "Assertion", cell: (a) => a.name },
    { label: "", cell: (a) => badge(a.passed ? "passed" : "failed") },
    { label: "Expected", class: "hide-narrow", cell: (a) => h("code", {}, JSON.stringify(a.expected)) },
    { label: "Actual", cell: (a) => h("code", {}, JSON.stringify(a.actual)) },
  ], rows, { empty: "No assertions yet." });
}

export async function render(main, { params }) {
  const box = h("div", {});
  main.append(box);
  let stop = null;
  stop = every(2000, async () => {
    let run;
    try {
      run = await api(`/api/browser_tests/${params[0]}`);
    } catch (err) {
      clear(box, errorBox(err));
      return;
    }
    document.title = `${run.test_type} run · Browser checks · apiary`;
    const children = run.children || [];
    clear(box, h("h1", {}, run.test_type === "suite" ? `Suite ${run.suite_name}` : `${run.test_type} check`),
      card("Run", kv([
        ["Id", h("code", {}, run.id)], ["Status", h("span", { id: "run-status" }, badge(run.status))],
        ["Target", h("code", {}, run.target_url || "—")], ["Started", time(run.started_at)],
        ["Completed", time(run.completed_at)], ["Duration", run.duration_ms == null ? "—" : `${run.duration_ms} ms`],
        ["Error", run.error || "—"],
      ])),
      run.test_type === "suite"
        ? children.map((c) => card(`${c.test_type}: ${c.target_url}`, h("p", {}, badge(c.status), " ", h("a", { href: `/browser/${c.id}` }, "details")), assertions(c.assertions)))
        : card("Assertions", assertions(run.assertions)),
      run.screenshot_key ? card("Screenshot", h("img", { class: "shot", alt: "what the browser saw", src: `/api/browser_tests/${run.id}/screenshot` })) : null);
    const finished = DONE.has(run.status) && children.every((c) => DONE.has(c.status));
    if (finished && stop) stop();
  });
  return () => stop && stop();
}
