// Tasks: newest first, filtered by status, type and server from the URL (so a filtered view
// is a link), one ETag'd request per minute while visible.
import { api } from "../api.js";
import { every, POLL_MS } from "../poll.js";
import { badge, card, clear, errorBox, h, table, time } from "../ui.js";

const STATUSES = ["", "pending", "assigned", "running", "succeeded", "failed", "cancelled", "timed_out"];

export async function render(main, { query, navigate }) {
  document.title = "Tasks · apiary";
  const status = h("select", { id: "f-status", name: "status" }, STATUSES.map((s) => h("option", { value: s, selected: s === (query.get("status") || "") }, s || "any")));
  const type = h("input", { id: "f-type", name: "type", value: query.get("type") || "", maxlength: 100 });
  const server = h("input", { id: "f-server", name: "server_id", value: query.get("server_id") || "", maxlength: 64 });
  const filters = h("form", { class: "inline", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of [["status", status.value], ["type", type.value.trim()], ["server_id", server.value.trim()]]) if (v) next.set(k, v);
    navigate(`/tasks${next.size ? `?${next}` : ""}`);
  } }, h("label", { for: "f-status" }, "Status", status), h("label", { for: "f-type" }, "Type", type),
  h("label", { for: "f-server" }, "Server", server), h("button", { type: "submit" }, "Filter"));
  const list = h("div", {});
  main.append(h("h1", {}, "Tasks"), card("Filters", filters), card("Tasks", list));
  const params = new URLSearchParams();
  for (const key of ["status", "type", "server_id"]) if (query.get(key)) params.set(key, query.get(key));
  return every(POLL_MS, async () => {
    try {
      const { tasks } = await api(`/api/tasks?${params}`);
      clear(list, table([
        { label: "Task", cell: (t) => h("a", { href: `/tasks/${t.id}` }, t.type) },
        { label: "Status", cell: (t) => badge(t.status) },
        { label: "Attempts", cell: (t) => `${t.attempts} / ${t.max_attempts}` },
        { label: "Server", class: "hide-narrow", cell: (t) => (t.server_id ? h("code", {}, t.server_id) : "—") },
        { label: "Created", cell: (t) => time(t.created_at) },
      ], tasks, { empty: params.size ? "No task matches these filters." : "No tasks yet: POST /api/task to create one." }));
    } catch (err) {
      clear(list, errorBox(err));
    }
  });
}
