// The interactive API docs: Swagger UI from this server's own copy of its files, never a CDN, so no third party's
// script runs on the origin whose pages keep API tokens in the browser. A file, not an inline script, so the
// page's Content-Security-Policy can refuse every inline script.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
