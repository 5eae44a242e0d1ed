// The API docs: Swagger UI (served from this console, not a CDN) inside the console's frame.
// "Try it out" rides on the browser session; a write also sends the CSRF header the API asks for.
(function () {
  "use strict";
  var READS = { GET: true, HEAD: true };

  // Swagger UI leaves some controls without a name and its scrolling boxes out of the Tab order
  // (axe: select-name, label, button-name, scrollable-region-focusable). Named here as they appear.
  function nameControls(root) {
    root.querySelectorAll("tr[data-param-name] select:not([aria-label])").forEach(function (select) {
      select.setAttribute("aria-label", select.closest("tr").dataset.paramName);
    });
    root.querySelectorAll("select:not([aria-label])").forEach(function (select) {
      select.setAttribute("aria-label", select.closest(".response-controls, .body-param-content-type")
        ? "Media type" : "Choose a value");
    });
    root.querySelectorAll("textarea:not([aria-label])").forEach(function (area) {
      area.setAttribute("aria-label", area.closest(".body-param") ? "Request body" : "Value");
    });
    root.querySelectorAll("button:not([aria-label])").forEach(function (button) {
      if (button.textContent.trim() === "") {
        button.setAttribute("aria-label", button.closest(".copy-to-clipboard, .curl-command")
          ? "Copy to the clipboard" : "Show or hide");
      }
    });
    root.querySelectorAll(".highlight-code pre:not([tabindex]), pre.microlight:not([tabindex])")
      .forEach(function (box) { box.setAttribute("tabindex", "0"); });
  }

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
    new MutationObserver(function () { nameControls(root); })
      .observe(root, { childList: true, subtree: true });
    nameControls(root);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
