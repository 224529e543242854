"""The Cloudflare account on one machine: the part of Cloudflare's API that fleet management
uses, served by `apiary dev` under `/client/v4`, with deployed JavaScript Workers really
running on workerd (through the pinned wrangler's miniflare).

- `store`: scripts, versions, deployments and dispatch namespaces in SQLite.
- `uploads`, `bindings`: the multipart upload and its metadata, checked as Cloudflare does.
- `shapes`: store rows as Cloudflare's JSON objects.
- `scripts_api`, `versions_api`, `namespaces_api`: the REST routes; `app` puts them together
  behind the bearer token, with the Browser Rendering subset and GraphQL.
- `graphql_api`: `workersInvocationsAdaptive` on a real GraphQL schema.
- `invocations`: every invocation of a deployed Worker, with its status, duration and logs.
- `routing`: which script a Host names, and which version a request gets.
- `runner` (+ `runner.mjs`, `gateway.js`, `wrapper.js`): the Node process hosting workerd.
- `router`: the ASGI handler that forwards a request to its Worker and records it.
"""
