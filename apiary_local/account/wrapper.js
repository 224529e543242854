// The entry module apiary puts in front of a deployed Worker's own main module (imported as
// __MAIN__). For each HTTP invocation it keeps, in an AsyncLocalStorage, what Cloudflare's
// analytics and logs would know: the console lines, the subrequests (fetch() calls and
// dispatch-namespace calls) and the exception, including those of waitUntil() work, and
// reports them once everything has settled. It also gives the Worker its dispatch-namespace
// bindings: miniflare's own option needs Cloudflare, so `env.NAME.get(script).fetch()` goes
// back to apiary dev's router, which runs that namespace's script like any other Worker; the
// limits of `get(script, args, {limits: {cpuMs, subRequests}})` go with it (the router holds
// the invocation to cpuMs of wall time, this wrapper counts its subrequests against the cap).
// Bindings whose names start with __APIARY_ are apiary's and are taken out of `env`.
import { AsyncLocalStorage } from "node:async_hooks";
import * as user from "__MAIN__";
export * from "__MAIN__";

const invocation = new AsyncLocalStorage();
const MAX_LOGS = 256;
const realFetch = globalThis.fetch;
const MAX_REPORTS = 10000;
const reports = [];

const SUBREQUEST_LIMIT = "x-apiary-subrequest-limit";

function countSubrequest() {
  const current = invocation.getStore();
  if (!current) return;
  current.subrequests += 1;
  if (current.subrequestLimit !== null && current.subrequests > current.subrequestLimit) {
    throw new Error("Too many subrequests.");
  }
}

globalThis.fetch = function fetch(input, init) {
  countSubrequest();
  return realFetch.call(globalThis, input, init);
};

function show(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack || String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

for (const level of ["debug", "info", "log", "warn", "error"]) {
  const original = console[level];
  console[level] = function (...args) {
    const current = invocation.getStore();
    if (current && current.logs.length < MAX_LOGS) {
      current.logs.push({ level, message: args.map(show), timestamp: Date.now() });
    }
    return original.apply(console, args);
  };
}

function describe(error) {
  return {
    name: String(error?.name ?? "Error"),
    message: String(error?.message ?? error),
    stack: String(error?.stack ?? ""),
  };
}

function dispatchNamespace(router, token, namespace) {
  return {
    get(name, args, options) {
      const limits = options && options.limits ? options.limits : null;
      return {
        async fetch(input, init) {
          const request = new Request(input, init);
          const headers = new Headers(request.headers);
          headers.set("x-apiary-dispatch", `${namespace}/${name}`);
          headers.set("x-apiary-dispatch-token", token);
          if (limits) headers.set("x-apiary-dispatch-limits", JSON.stringify(limits));
          countSubrequest();
          const response = await router.fetch(new Request(request, { headers }));
          const outcome = response.headers.get("x-apiary-outcome");
          if (outcome === "not-found") throw new Error(`Worker not found: ${name}`);
          if (outcome === "exception") {
            const thrown = await response.json();
            const error = new Error(thrown.message);
            error.name = thrown.name;
            throw error;
          }
          return response;
        },
      };
    },
  };
}

const envs = new WeakMap();
function userEnv(env) {
  let view = envs.get(env);
  if (view === undefined) {
    view = {};
    for (const [key, value] of Object.entries(env)) {
      if (!key.startsWith("__APIARY_")) view[key] = value;
    }
    const config = env.__APIARY_CONFIG;
    for (const [binding, namespace] of Object.entries(config.dispatch)) {
      view[binding] = dispatchNamespace(env.__APIARY_ROUTER, config.dispatchToken, namespace);
    }
    envs.set(env, view);
  }
  return view;
}

async function settle(store) {
  let seen = 0;
  while (seen < store.waits.length) {
    const batch = store.waits.slice(seen);
    seen = store.waits.length;
    for (const result of await Promise.allSettled(batch)) {
      if (result.status === "rejected" && store.exception === null) {
        store.exception = describe(result.reason);
      }
    }
  }
}

// The subrequest cap a dispatcher set, taken off the request the Worker sees.
function limited(request) {
  const cap = request.headers.get(SUBREQUEST_LIMIT);
  if (cap === null) return { request, limit: null };
  const headers = new Headers(request.headers);
  headers.delete(SUBREQUEST_LIMIT);
  return { request: new Request(request, { headers }), limit: Number(cap) };
}

async function track(original, env, ctx, run) {
  const { request, limit } = limited(original);
  const store = { subrequests: 0, subrequestLimit: limit, logs: [], exception: null, waits: [] };
  const tracked = new Proxy(ctx, {
    get(target, key) {
      if (key === "waitUntil") {
        return (promise) => {
          store.waits.push(promise);
          target.waitUntil(promise);
        };
      }
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const report = () => {
    if (reports.length >= MAX_REPORTS) reports.shift();
    reports.push({
      ray: request.headers.get("cf-ray"),
      subrequests: store.subrequests,
      logs: store.logs,
      exception: store.exception,
    });
  };
  let response;
  try {
    response = await invocation.run(store, () => run(tracked, request));
  } catch (error) {
    // workerd drops the waitUntil() work of an invocation that threw: report now.
    store.exception = describe(error);
    report();
    throw error;
  }
  ctx.waitUntil(
    settle(store)
      .then(report)
      .catch(() => {}),
  );
  return response;
}

// The gateway's collection of this version's reports (never a request of the Worker's own).
function collected(request, env) {
  const token = request.headers.get("x-apiary-reports");
  if (token === null || token !== env.__APIARY_CONFIG.reportsToken) return null;
  return Response.json(reports.splice(0, reports.length));
}

const inner = user.default;
let entry = inner;
if (typeof inner === "function" && typeof inner.prototype?.fetch === "function") {
  // A WorkerEntrypoint class: the same, through a subclass.
  entry = class extends inner {
    constructor(ctx, env) {
      super(ctx, userEnv(env));
      this.__apiaryEnv = env;
      this.__apiaryCtx = ctx;
    }
    fetch(request) {
      const reportsAnswer = collected(request, this.__apiaryEnv);
      if (reportsAnswer) return reportsAnswer;
      return track(request, this.__apiaryEnv, this.__apiaryCtx, (_, seen) => super.fetch(seen));
    }
  };
} else if (inner && typeof inner.fetch === "function") {
  entry = {
    ...inner,
    fetch(request, env, ctx) {
      const reportsAnswer = collected(request, env);
      if (reportsAnswer) return reportsAnswer;
      return track(request, env, ctx, (tracked, seen) =>
        inner.fetch.call(inner, seen, userEnv(env), tracked),
      );
    },
  };
}
export default entry;
