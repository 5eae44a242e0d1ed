// The API docs: Swagger UI (served from this console, not a CDN) inside the console's frame.
// "Try it out" rides on the browser session; a write also sends the CSRF header the API asks for.
(function () {
  "use strict";
  var READS = { GET: true, HEAD: true };

  function start() {
    var root = document.getElementById("swagger-ui");
    var config = JSON.parse(document.getElementById("swagger-settings").textContent);
    config.dom_id = "#swagger-ui";
    config.presets = [SwaggerUIBundle.presets.apis];
    config.requestInterceptor = function (request) {
      var method = (request.method || "GET").toUpperCase();
      if (!READS[method]) {
        request.headers["X-CSRFToken"] = root.dataset.csrfToken;
      }
      return request;
    };
    window.portsideApiDocs = SwaggerUIBundle(config);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
