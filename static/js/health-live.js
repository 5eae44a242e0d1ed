// Live Health pages: after a reconnect the page's view is sent again
// with a request for its current state (changes may have been missed meanwhile). The fragments
// themselves come from the server (out-of-band swaps of the page's own partials).
(function () {
  "use strict";
  PortsideLive.onOpen(function (socket, again) {
    if (!again) return;
    var view = document.getElementById("health-live-view");
    if (view) {
      view.querySelector("input[name=resync]").value = "1";
      htmx.trigger(view, "resend");
    }
  });
})();
