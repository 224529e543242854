// Overview: health and its checks, the last 24 hours in numbers, the latest failures across
// tasks, cron, browser checks and the fleet, and what the local meter says the work has cost. One
// request per minute (`/api/overview`, ETag'd, from D1 only), plus the meter when local.
import { api } from "../api.js";
import { every, POLL_MS } from "../poll.js";
import { badge, card, clear, empty, errorBox, h, kv, needsScope, table, time } from "../ui.js";
import { estimate } from "../cost.js";

const DETAIL = {
  tasks: (f) => `/tasks/${f.id}`,
  cron: (f) => `/cron/runs/${f.id}`,
  browser_tests: (f) => `/browser/${f.id}`,
  fleet: (f) => `/fleet/${f.id}`,
};

function numbers(byStatus) {
  const entries = Object.entries(byStatus || {});
  if (!entries.length) return empty("none in the last 24 hours");
  return h("div", { class: "numbers" },
    entries.map(([status, n]) => h("div", {}, h("strong", {}, n), badge(status))));
}

function fleetNumbers(fleet) {
  const counts = Object.entries(fleet.by_status).filter(([, n]) => n);
  if (!counts.length) return empty("No managed Workers yet.");
  return h("div", { class: "numbers" }, counts.map(([status, n]) => h("div", {}, h("strong", {}, n), badge(status))));
}

function section(title, data, body, href) {
  return card(title, needsScope(data) || body(data), href ? h("p", {}, h("a", { href }, `All ${title.toLowerCase()}`)) : null);
}

async function meter() {
  // apiary dev's meter (loopback only); on Cloudflare there is none: usage is the fleet's.
  try {
    const response = await fetch("/__meter", { cache: "no-store" });
    if (!response.ok || !(response.headers.get("content-type") || "").includes("json")) return null;
    return await response.json();
  } catch {
    return null;
  }
}

function costCard(reading) {
  if (!reading) return card("Cost so far", empty("The meter is apiary dev's: on Cloudflare, usage comes with the fleet page."));
  const b = reading.billable;
  return card("Cost so far",
    h("p", { class: "muted" }, "What apiary dev's meter has counted since it started or was reset, at Cloudflare's list prices beyond the included usage."),
    kv([
      ["Worker requests", b.worker_requests],
      ["Durable Object requests", b.do_requests],
      ["DO rows read / written", `${b.do_rows_read} / ${b.do_rows_written}`],
      ["D1 rows read / written", `${b.d1_rows_read} / ${b.d1_rows_written}`],
      ["CPU (upper bound)", `${Math.round(b.cpu_ms)} ms`],
      ["Static asset requests (free)", reading.totals.asset_requests || 0],
      ["Estimate", h("strong", { id: "cost-estimate" }, `$${estimate(b).toFixed(6)}`)],
    ]));
}

export async function render(main) {
  document.title = "Overview · apiary";
  const body = h("div", { id: "overview" });
  main.append(h("h1", {}, "Overview"), body);
  return every(POLL_MS, async () => {
    let data;
    let reading;
    try {
      [data, reading] = await Promise.all([api("/api/overview"), meter()]);
    } catch (err) {
      clear(body, errorBox(err));
      return;
    }
    const health = data.health;
    const s = data.sections;
    clear(body,
      h("div", { class: "grid" },
        card("Health",
          h("p", {}, badge(health.status), " ", h("span", { class: "muted" }, `${health.environment} · ${health.version}`)),
          kv(Object.entries(health.checks).map(([name, value]) => [name, badge(value)]))),
        section("Tasks", s.tasks, (d) => numbers(d.by_status), "/tasks"),
        section("Cron", s.cron, (d) => numbers(d.by_status), "/cron"),
        section("Browser checks", s.browser_tests, (d) => numbers(d.by_status), "/browser"),
        section("Swarms", s.swarms, (d) => h("div", { class: "numbers" }, h("div", {}, h("strong", {}, d.total), "swarms")), "/swarms"),
        section("Fleet", s.fleet, fleetNumbers, "/fleet"),
        costCard(reading)),
      card("Latest failures",
        table([
          { label: "What", cell: (f) => f.kind.replace("_", " ") },
          { label: "Name", cell: (f) => (DETAIL[f.kind] ? h("a", { href: DETAIL[f.kind](f) }, f.name) : f.name) },
          { label: "Status", cell: (f) => badge(f.status) },
          { label: "Error", class: "hide-narrow", cell: (f) => h("span", { class: "mono" }, (f.error || "").slice(0, 160)) },
          { label: "When", cell: (f) => time(f.at) },
        ], data.failures, { empty: "No failures. Everything that ran lately succeeded." })),
      h("p", { class: "muted" }, "Counts cover the 24 hours since ", time(data.window_start), ". Refreshes every minute while this tab is visible."));
  });
}
