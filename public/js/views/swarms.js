// Swarms: the list (newest first) and a form to create one.
import { api } from "../api.js";
import { card, clear, errorBox, h, table, time } from "../ui.js";

export async function render(main, { navigate }) {
  document.title = "Swarms · apiary";
  const list = h("div", {});
  const problem = h("div", {});
  const name = h("input", { id: "swarm-name", name: "name", required: true, maxlength: 100, placeholder: "render farm" });
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    clear(problem);
    try {
      const swarm = await api("/api/swarms", { method: "POST", body: { name: name.value.trim() } });
      navigate(`/swarms/${swarm.id}`);
    } catch (err) {
      clear(problem, errorBox(err));
    }
  } }, h("label", { for: "swarm-name" }, "Name", name), h("button", { type: "submit", class: "primary" }, "Create swarm"));
  main.append(h("h1", {}, "Swarms"), card("New swarm", problem, form), card("All swarms", list));
  try {
    const { swarms } = await api("/api/swarms");
    clear(list, table([
      { label: "Name", cell: (s) => h("a", { href: `/swarms/${s.id}` }, s.name) },
      { label: "Id", class: "hide-narrow", cell: (s) => h("code", {}, s.id) },
      { label: "Created", cell: (s) => time(s.created_at) },
    ], swarms, { empty: "No swarms yet: create one above, then invite devices to it." }));
  } catch (err) {
    clear(list, errorBox(err));
  }
}
