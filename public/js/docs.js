// The OpenAPI UI from the vendored Swagger UI (no CDN): it reads /openapi.json, which the
// Worker serves. "Try it out" uses the dashboard's session cookie when signed in.
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
  });
});
