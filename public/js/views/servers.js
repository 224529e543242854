// Servers: health and load. The registry is a Durable Object, so this page reads it on load
// and on demand (Refresh), never on a timer: an open page costs no invocation while idle.
import { api } from "../api.js";
import { badge, card, clear, errorBox, h, table, ago } from "../ui.js";

export async function render(main) {
  document.title = "Servers · apiary";
  const list = h("div", {});
  const refresh = async () => {
    try {
      const { servers } = await api("/api/servers");
      clear(list, table([
        { label: "Server", cell: (s) => h("span", {}, s.name, h("br"), h("code", { class: "muted" }, s.url)) },
        { label: "Status", cell: (s) => badge(s.status) },
        { label: "Load", cell: (s) => h("span", {}, h("meter", { min: 0, max: s.capacity, value: s.active_tasks, high: s.capacity * 0.85, "aria-label": `${s.name} load` }), ` ${s.active_tasks} / ${s.capacity}`) },
        { label: "Capabilities", class: "hide-narrow", cell: (s) => (s.capabilities || []).join(", ") || "—" },
        { label: "Last seen", cell: (s) => (s.last_seen_ms ? ago(new Date(s.last_seen_ms).toISOString()) : "never") },
        { label: "Tasks", cell: (s) => h("a", { href: `/tasks?server_id=${s.id}` }, "tasks") },
      ], servers, { empty: "No servers registered: run `apiary backend` or POST /api/servers." }));
    } catch (err) {
      clear(list, errorBox(err));
    }
  };
  main.append(h("h1", {}, "Servers"),
    card("Registered servers", h("p", {}, h("button", { type: "button", onclick: refresh }, "Refresh")), list));
  await refresh();
}
