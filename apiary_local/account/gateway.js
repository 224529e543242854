// The one door into workerd: apiary dev's router sends every request for a deployed Worker
// here, naming the version (a miniflare worker, "v" + the version id without hyphens) in
// `x-apiary-target`. An exception the Worker throws reaches us through the service binding,
// so it is told apart from a Worker that answers 500 on purpose: it comes back as a 500 with
// `x-apiary-outcome: exception` and the error as JSON, which the router turns into
// Cloudflare's error 1101. `x-apiary-token` proves the request came from the router.
// `x-apiary-target: __reports` collects the invocation reports every version keeps
// (wrapper.js), as one JSON list.
export default {
  async fetch(request, env) {
    if (request.headers.get("x-apiary-token") !== env.TOKEN) {
      return new Response("forbidden", { status: 403 });
    }
    const target = request.headers.get("x-apiary-target");
    if (target === "__ping") return new Response("pong");
    if (target === "__reports") {
      const all = [];
      for (const name of env.VERSIONS) {
        const answer = await env[name].fetch("http://apiary/", {
          headers: { "x-apiary-reports": env.REPORTS_TOKEN },
        });
        if (answer.ok) all.push(...(await answer.json()));
      }
      return Response.json(all);
    }
    const service = target && target.startsWith("v") ? env[target] : undefined;
    if (service === undefined) {
      return new Response("no such version here", {
        status: 404,
        headers: { "x-apiary-outcome": "internalError" },
      });
    }
    const headers = new Headers(request.headers);
    headers.delete("x-apiary-token");
    headers.delete("x-apiary-target");
    try {
      return await service.fetch(new Request(request, { headers }));
    } catch (error) {
      const body = JSON.stringify({
        name: String(error?.name ?? "Error"),
        message: String(error?.message ?? error),
        stack: String(error?.stack ?? ""),
      });
      return new Response(body, {
        status: 500,
        headers: { "x-apiary-outcome": "exception", "content-type": "application/json" },
      });
    }
  },
};
