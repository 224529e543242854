// apiary dev's Worker runner: one Miniflare (workerd) hosting every deployed version of the
// local account, driven by apiary dev over stdin/stdout, one JSON object per line.
//
//   in:  {"id": 1, "op": "apply", "config": {...}}   -> {"id": 1, "ok": true, "url": "..."}
//        {"id": 2, "op": "restart"}                   -> the same, on a fresh workerd
//
// `config`: {gatewayToken, dispatchToken, router: "127.0.0.1:PORT", workers: [{name, dir,
// modules: [{name, type}], compatibilityDate, compatibilityFlags, bindings}]}; each worker's
// entry module is dir/__apiary_entry.js (wrapper.js with its main module filled in). The
// gateway (gateway.js) is the only socket, on loopback. stdout carries nothing else: workerd's
// own output and miniflare's log go to stderr. Invocation reports are collected through the
// gateway (`x-apiary-target: __reports`), not here. When stdin closes (apiary dev stopped, or was
// killed), workerd is disposed and the process exits.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Log, LogLevel, Miniflare } from "miniflare";

const GATEWAY = readFileSync(new URL("./gateway.js", import.meta.url), "utf8");
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
console.log = console.info = console.debug = console.warn = console.error;

let miniflare = null;
let current = null;
let outputTail = [];

function workerOptions(config, worker) {
  const flags = [...worker.compatibilityFlags];
  if (!flags.includes("nodejs_compat") && !flags.includes("nodejs_als")) flags.push("nodejs_als");
  return {
    name: worker.name,
    modulesRoot: worker.dir,
    modules: [
      { type: "ESModule", path: `${worker.dir}/__apiary_entry.js` },
      ...worker.modules.map((m) => ({ type: m.type, path: `${worker.dir}/${m.name}` })),
    ],
    compatibilityDate: worker.compatibilityDate,
    compatibilityFlags: flags,
    bindings: {
      ...worker.bindings,
      __APIARY_CONFIG: {
        dispatch: worker.dispatch,
        dispatchToken: config.dispatchToken,
        reportsToken: config.reportsToken,
      },
    },
    serviceBindings: {
      __APIARY_ROUTER: { external: { address: config.router, http: {} } },
    },
  };
}

function options(config) {
  const gatewayBindings = Object.fromEntries(config.workers.map((w) => [w.name, w.name]));
  return {
    log: new Log(LogLevel.WARN),
    // The Request.cf placeholder, never fetched: workers.cloudflare.com is not reachable here.
    cf: false,
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        createInterface({ input: stream }).on("line", (line) => {
          process.stderr.write(`${line}\n`);
          outputTail = [...outputTail.slice(-39), line];
        });
      }
    },
    workers: [
      {
        name: "apiary-gateway",
        modules: true,
        script: GATEWAY,
        compatibilityDate: "2025-01-01",
        bindings: {
          TOKEN: config.gatewayToken,
          REPORTS_TOKEN: config.reportsToken,
          VERSIONS: config.workers.map((w) => w.name),
        },
        serviceBindings: gatewayBindings,
        unsafeDirectSockets: [{ host: "127.0.0.1", port: config.port ?? 0 }],
      },
      ...config.workers.map((w) => workerOptions(config, w)),
    ],
  };
}

function startupError(error) {
  const uncaught = outputTail.filter((line) => /Uncaught|SyntaxError|Error:/.test(line));
  return uncaught.length ? uncaught.join("\n").slice(0, 2000) : String(error?.message ?? error);
}

async function start(config) {
  outputTail = [];
  const next = new Miniflare(options(config));
  try {
    await next.ready;
    const url = await next.unsafeGetDirectURL("apiary-gateway");
    return { miniflare: next, url: url.href.replace(/\/$/, "") };
  } catch (error) {
    await next.dispose().catch(() => {});
    throw new Error(startupError(error));
  }
}

async function apply(config) {
  // A fresh workerd for every change: setOptions keeps one, but a change of the worker set
  // must not leave an isolate that a runaway Worker is spinning in.
  if (miniflare) await miniflare.dispose().catch(() => {});
  miniflare = null;
  try {
    const started = await start(config);
    miniflare = started.miniflare;
    current = config;
    return started.url;
  } catch (error) {
    if (current) {
      const restored = await start(current).catch(() => null);
      if (restored) miniflare = restored.miniflare;
    }
    throw error;
  }
}

let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = JSON.parse(line);
  queue = queue.then(async () => {
    try {
      const config = command.op === "restart" ? current : command.config;
      if (!config) throw new Error("nothing to restart");
      send({ id: command.id, ok: true, url: await apply(config) });
    } catch (error) {
      send({ id: command.id, ok: false, error: String(error?.message ?? error) });
    }
  });
});
lines.on("close", async () => {
  await queue;
  if (miniflare) await miniflare.dispose().catch(() => {});
  process.exit(0);
});
