// The swarm's web client: this browser joins a swarm as a device. It reads the invite from
// the URL fragment (never sent to a server), takes it out of the address bar, JOINs (or
// RESUMEs with its saved credentials), registers its capabilities, reports a benchmark, runs
// each JOB_ASSIGN in a Web Worker with the built-in handlers and reports JOB_COMPLETE, sends
// `ping` heartbeats, and reconnects with backoff and jitter, RESUMEing each time. Chunks live
// on a connection: a result for a chunk from a connection that has gone is dropped.
import { ReconnectingSocket } from "../socket.js";
import { badge, clear, h } from "../ui.js";
import * as credentials from "./credentials.js";

const FATAL = new Set(["unknown device", "bad signature"]);
const main = document.getElementById("main");

function params() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const swarm = fragment.get("swarm") || query.get("swarm");
  const invite = fragment.get("invite");
  if (location.hash && swarm) history.replaceState(null, "", `/join?swarm=${encodeURIComponent(swarm)}`);
  return { swarm, invite };
}

async function capabilities() {
  const caps = {
    cpuCores: Math.max(1, navigator.hardwareConcurrency || 1),
    memoryGB: Number(navigator.deviceMemory || 0),
    gpuAvailable: false,
  };
  if (navigator.gpu) {
    try {
      const adapter = await navigator.gpu.requestAdapter();
      if (adapter) {
        caps.gpuAvailable = true;
        const info = adapter.info || {};
        const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ");
        if (name) caps.gpuName = name.slice(0, 200);
      }
    } catch {
      caps.gpuAvailable = false;
    }
  }
  return caps;
}

function start() {
  const { swarm, invite } = params();
  if (!swarm || !/^swm_[0-9A-Z]{26}$/.test(swarm)) {
    clear(main, h("h1", {}, "Join a swarm"), h("p", {}, "Open an invite link (or scan its QR code) from the swarm's page in the apiary dashboard."));
    return;
  }
  if (!invite && !credentials.load(swarm)) {
    clear(main, h("h1", {}, "Join a swarm"), h("p", { id: "join-status" }, "This browser is not a device of this swarm yet: open an invite link (or scan its QR code) from the swarm's page."));
    return;
  }
  const view = {
    status: h("p", { id: "join-status", role: "status", "aria-live": "polite" }, "connecting"),
    device: h("code", { id: "device-id" }, "—"),
    caps: h("span", { id: "capabilities" }, "…"),
    done: h("strong", { id: "chunks-done" }, "0"),
    current: h("span", { id: "current-chunk" }, "none"),
    devices: h("ul", { id: "swarm-devices", class: "log" }),
    log: h("ul", { id: "activity", class: "log" }),
  };
  clear(main, h("h1", {}, "Swarm device"), view.status,
    h("section", { class: "card" }, h("h2", {}, "This device"),
      h("dl", { class: "kv" }, h("dt", {}, "Device"), h("dd", {}, view.device), h("dt", {}, "Swarm"), h("dd", {}, h("code", {}, swarm)),
        h("dt", {}, "Capabilities"), h("dd", {}, view.caps), h("dt", {}, "Chunks done"), h("dd", {}, view.done),
        h("dt", {}, "Working on"), h("dd", {}, view.current))),
    h("section", { class: "card" }, h("h2", {}, "Devices in this swarm"), view.devices),
    h("section", { class: "card" }, h("h2", {}, "Activity"), view.log));

  const note = (text) => {
    view.log.prepend(h("li", {}, `${new Date().toLocaleTimeString()} ${text}`));
    while (view.log.children.length > 50) view.log.lastChild.remove();
  };
  const devices = new Map();
  const drawDevices = () => clear(view.devices, [...devices.values()].map((d) =>
    h("li", { "data-device": d.id }, badge(d.status), " ", d.name || "(registering)", " ", h("code", { class: "muted" }, d.id))));

  let pendingInvite = invite;
  let generation = 0;
  let caps = null;
  let score = null;
  let done = 0;
  const working = new Map();
  const worker = new Worker("/js/join/worker.js", { type: "module" });
  let nextJob = 0;
  const calls = new Map();
  worker.onmessage = ({ data }) => {
    const resolve = calls.get(data.id);
    calls.delete(data.id);
    if (resolve) resolve(data);
  };
  const inWorker = (message) => new Promise((resolve) => {
    const id = ++nextJob;
    calls.set(id, resolve);
    worker.postMessage({ ...message, id });
  });

  const hello = async () => {
    generation += 1;
    working.clear();
    view.current.textContent = "none";
    const saved = credentials.load(swarm);
    if (saved) return credentials.resumeFrame(saved);
    if (!pendingInvite) throw new Error("no invite");
    return JSON.stringify({ type: "JOIN", data: { invite_token: pendingInvite } });
  };
  const socket = new ReconnectingSocket(
    () => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/swarms/${swarm}/ws?persistentId=${credentials.persistentId()}`,
    { hello, buffer: false, heartbeatMs: 10_000, minDelayMs: 300, maxDelayMs: 15_000 },
  );
  const stopFor = (why) => {
    socket.close();
    view.status.textContent = why;
    note(why);
  };

  socket.on("open", () => { view.status.textContent = "connected: saying hello"; });
  socket.on("close", (event) => {
    if (socket.closed) return;
    if (event.code === 4000) return stopFor("This device is now connected from another window: this one stopped.");
    view.status.textContent = `disconnected (${event.code}); reconnecting in ${(socket.retryInMs / 1000).toFixed(1)} s`;
    note(`disconnected (${event.code})`);
  });
  socket.on("message", async ({ type, data }) => {
    if (type === "WELCOME") {
      if (data.device_secret) {
        credentials.save(swarm, data.device_id, data.device_secret);
        pendingInvite = null; // used: from now on this device resumes
      }
      view.device.textContent = data.device_id;
      view.status.textContent = data.resumed ? `resumed as ${data.device_id}` : `joined as ${data.device_id}`;
      note(view.status.textContent);
      caps = caps || (await capabilities());
      view.caps.textContent = `${caps.cpuCores} cores, ${caps.memoryGB || "?"} GB, ${caps.gpuAvailable ? `GPU ${caps.gpuName || ""}` : "no GPU"}`;
      socket.send("DEVICE_REGISTER", { name: `browser ${credentials.persistentId().slice(0, 4)}`, capabilities: caps });
      score = score || (await inWorker({ benchmark: true })).result;
      socket.send("BENCHMARK_RESULT", { score: Math.max(0.001, score) });
    } else if (type === "STATE") {
      if (data.full) devices.clear();
      for (const d of data.devices) devices.set(d.id, { ...devices.get(d.id), ...d });
      drawDevices();
    } else if (type === "JOB_ASSIGN") {
      const mine = generation;
      working.set(data.chunkId, data);
      view.current.textContent = data.chunkId;
      const outcome = await inWorker({ payload: data.payload });
      if (mine !== generation) return; // the connection it came on is gone: the swarm reassigned it
      working.delete(data.chunkId);
      view.current.textContent = [...working.keys()].at(-1) || "none";
      socket.send("JOB_COMPLETE", { chunkId: data.chunkId, result: outcome.result ?? null, error: outcome.error ?? null, durationMs: outcome.durationMs });
      if (!outcome.error) view.done.textContent = String(++done);
    } else if (type === "SYSTEM_LOG") {
      note(data.message);
    } else if (type === "ERROR") {
      note(`error ${data.code}: ${data.message}`);
      if (data.code !== "auth_failed") return;
      if (FATAL.has(data.message)) {
        credentials.forget(swarm);
        if (!pendingInvite) stopFor("This device's credentials were refused: open a new invite link.");
      } else if (!credentials.load(swarm)) {
        stopFor(`The invite was refused: ${data.message}. Ask for a new one.`);
      }
    }
  });
}

start();
