// Fleet: Workers, versions, rollouts, usage and cost. It comes with the fleet-management
// issue; this route holds its place so the navigation and deep links are stable.
import { card, empty, h } from "../ui.js";

export async function render(main) {
  document.title = "Fleet · apiary";
  main.append(h("h1", {}, "Fleet"),
    card("Coming soon", empty("Fleet management (Workers, versions, rollouts, usage charts, cost) is not part of apiary yet: this page will show it when it lands.")));
}
