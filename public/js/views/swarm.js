// One swarm, live: its devices, jobs with progress bars and system log. The snapshot comes
// from GET /api/swarms/{id}; after that a watcher socket (the session cookie, checked at the
// upgrade) brings the swarm's coalesced STATE broadcasts, so devices and progress change
// without a reload and an idle swarm costs nothing. Details a STATE frame does not carry
// (speed, chunks in flight, the log) are re-read at most every few seconds while it moves.
import { api } from "../api.js";
import { qrCode } from "../qr.js";
import { ReconnectingSocket } from "../socket.js";
import { badge, card, clear, empty, errorBox, h, table, time, ago } from "../ui.js";

const DETAIL_EVERY_MS = 3000;

function wsUrl(id) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/swarms/${id}/ws?watch=1`;
}

function chunksOf(kind, count, size) {
  return Array.from({ length: count }, (_, i) =>
    kind === "primes" ? { op: "primes", below: size, i } : { op: "echo", ms: size, i });
}

export async function render(main, { params }) {
  const [id] = params;
  const state = { swarm: null, devices: new Map(), jobs: new Map(), version: 0 };
  const title = h("h1", {}, "Swarm");
  const live = h("span", { id: "live", class: "live down" }, "connecting");
  const devicesBox = h("div", { id: "devices" });
  const jobsBox = h("div", { id: "jobs" });
  const logBox = h("ul", { class: "log", id: "swarm-log" });
  const inviteBox = h("div", { id: "invite" });
  const jobProblem = h("div", {});
  main.append(title, h("p", { class: "muted" }, live, " ", h("code", {}, id)),
    h("div", { class: "grid" },
      h("section", { class: "card wide", "aria-label": "Devices" }, h("h2", {}, "Devices"), devicesBox),
      h("section", { class: "card wide", "aria-label": "Jobs" }, h("h2", {}, "Jobs"), jobsBox)),
    h("div", { class: "grid" }, inviteCard(id, inviteBox), jobCard(id, jobProblem, () => refreshDetails())),
    card("System log", logBox));

  function drawDevices() {
    const rows = [...state.devices.values()];
    clear(devicesBox, table([
      { label: "Device", cell: (d) => h("span", {}, d.name || h("span", { class: "muted" }, "(registering)"), h("br"), h("code", { class: "muted" }, d.id)) },
      { label: "Status", cell: (d) => badge(d.status) },
      { label: "Speed", cell: (d) => (d.weight ? `${d.weight.toFixed(2)} chunks/s` : "—") },
      { label: "Quota", cell: (d) => d.quota },
      { label: "In flight", cell: (d) => d.chunks_in_flight ?? "—" },
      { label: "Last seen", class: "hide-narrow", cell: (d) => (d.last_seen ? ago(d.last_seen) : "—") },
    ], rows.map((d) => ({ ...d })), { empty: "No devices yet: share an invite below." }));
    for (const tr of devicesBox.querySelectorAll("tbody tr")) tr.dataset.status = tr.querySelector(".badge")?.textContent;
  }

  function drawJobs() {
    const rows = [...state.jobs.values()];
    clear(jobsBox, table([
      { label: "Job", cell: (j) => j.name },
      { label: "Progress", cell: (j) => {
        const pct = j.total ? Math.round((100 * j.done) / j.total) : 100;
        return h("span", {}, h("progress", { max: 100, value: pct, "aria-label": `${j.name} progress`, "data-job": j.id }), ` ${pct}%`);
      } },
      { label: "Done", cell: (j) => `${j.done} / ${j.total}` },
      { label: "Failed", cell: (j) => j.failed },
    ], rows, { empty: "No jobs yet: submit one below." }));
  }

  function drawLog(lines) {
    clear(logBox, lines.length ? lines.map((l) => h("li", {}, time(l.at), " ", badge(l.level), " ", l.message)) : h("li", { class: "muted" }, "nothing logged yet"));
    logBox.scrollTop = logBox.scrollHeight;
  }

  function applySnapshot(swarm) {
    state.swarm = swarm;
    document.title = `${swarm.name} · Swarms · apiary`;
    clear(title, swarm.name);
    for (const d of swarm.devices) state.devices.set(d.id, { ...state.devices.get(d.id), ...d });
    for (const j of swarm.jobs) state.jobs.set(j.id, { ...state.jobs.get(j.id), id: j.id, name: j.name, done: j.done, failed: j.failed, total: j.total_chunks });
    drawDevices();
    drawJobs();
    drawLog(swarm.log);
  }

  function applyState(data) {
    if (data.full) state.version = 0;
    for (const d of data.devices) state.devices.set(d.id, { ...state.devices.get(d.id), ...d });
    for (const j of data.jobs) state.jobs.set(j.id, { ...state.jobs.get(j.id), ...j });
    state.version = data.version;
    drawDevices();
    drawJobs();
  }

  let detailTimer = null;
  let lastDetail = 0;
  async function refreshDetails() {
    clearTimeout(detailTimer);
    detailTimer = null;
    lastDetail = Date.now();
    try {
      applySnapshot((await api(`/api/swarms/${id}`)));
    } catch (err) {
      clear(devicesBox, errorBox(err));
    }
  }
  function detailsSoon() {
    if (detailTimer) return;
    detailTimer = setTimeout(refreshDetails, Math.max(0, lastDetail + DETAIL_EVERY_MS - Date.now()));
  }

  await refreshDetails();
  const socket = new ReconnectingSocket(() => wsUrl(id));
  socket.on("open", () => { live.className = "live"; live.textContent = "live"; });
  socket.on("close", () => { live.className = "live down"; live.textContent = "reconnecting"; });
  socket.on("message", (message) => {
    if (message.type !== "STATE") return;
    applyState(message.data);
    // Only what the last snapshot does not already show is worth a request.
    if (message.data.version > (state.swarm ? state.swarm.version : 0)) detailsSoon();
  });
  return () => {
    clearTimeout(detailTimer);
    socket.close();
  };
}

function inviteCard(id, box) {
  const problem = h("div", {});
  const uses = h("input", { id: "invite-uses", type: "number", min: 1, max: 10000, value: "1" });
  const ttl = h("select", { id: "invite-ttl" },
    h("option", { value: "3600" }, "1 hour"), h("option", { value: "86400", selected: true }, "1 day"),
    h("option", { value: "604800" }, "7 days"));
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    clear(problem);
    try {
      const invite = await api(`/api/swarms/${id}/invites`, { method: "POST", body: { max_uses: Number(uses.value), ttl_s: Number(ttl.value) } });
      clear(box, h("div", { class: "qr" }, qrCode(invite.invite_url, { label: "invite QR code" }),
        h("div", {},
          h("p", {}, "Open this link, or scan the code with a phone, to join this browser as a device:"),
          h("p", {}, h("a", { id: "invite-link", href: invite.invite_url, target: "_blank", rel: "noopener" }, invite.invite_url)),
          h("p", { class: "muted" }, `${invite.max_uses} use(s), expires `, time(invite.expires_at)),
          h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(invite.invite_url) }, "Copy link"))));
    } catch (err) {
      clear(problem, errorBox(err));
    }
  } }, h("label", { for: "invite-uses" }, "Uses", uses), h("label", { for: "invite-ttl" }, "Valid for", ttl),
  h("button", { type: "submit", class: "primary" }, "Create invite"));
  return card("Invite a device", problem, form, box);
}

function jobCard(id, problem, after) {
  const name = h("input", { id: "job-name", required: true, value: "demo", maxlength: 100 });
  const count = h("input", { id: "job-chunks", type: "number", min: 1, max: 10000, value: "20" });
  const kind = h("select", { id: "job-kind" }, h("option", { value: "echo" }, "echo (sleep ms)"), h("option", { value: "primes" }, "count primes below"));
  const size = h("input", { id: "job-size", type: "number", min: 0, max: 10000000, value: "200" });
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    clear(problem);
    try {
      await api(`/api/swarms/${id}/jobs`, { method: "POST", body: { name: name.value.trim(), chunks: chunksOf(kind.value, Number(count.value), Number(size.value)) } });
      after();
    } catch (err) {
      clear(problem, errorBox(err));
    }
  } }, h("label", { for: "job-name" }, "Name", name), h("label", { for: "job-chunks" }, "Chunks", count),
  h("label", { for: "job-kind" }, "Each chunk", kind), h("label", { for: "job-size" }, "ms / n", size),
  h("button", { type: "submit", class: "primary" }, "Submit job"));
  return card("Submit a job", h("p", { class: "muted" }, "Chunks run on the devices' built-in handlers."), problem, form);
}
