// Live Health pages: the connection's status, and after a reconnect the page's view sent again
// with a request for its current state (changes may have been missed meanwhile). The fragments
// themselves come from the server (out-of-band swaps of the page's own partials).
(function () {
  "use strict";
  var everOpened = false;

  // Reconnect within a few seconds after a server restart, not after up to a minute.
  htmx.config.wsReconnectDelay = function (retry) {
    return Math.min(500 * Math.pow(2, retry), 5000) * (0.5 + Math.random() / 2);
  };

  function setStatus(state, text) {
    var status = document.getElementById("live-status");
    if (status) {
      status.dataset.state = state;
      status.textContent = text;
    }
  }

  document.addEventListener("htmx:wsConnecting", function () {
    setStatus(everOpened ? "reconnecting" : "connecting", everOpened ? "reconnecting…" : "connecting…");
  });
  document.addEventListener("htmx:wsOpen", function () {
    setStatus("live", "live");
    if (everOpened) {
      var view = document.getElementById("health-live-view");
      if (view) {
        view.querySelector("input[name=resync]").value = "1";
        htmx.trigger(view, "resend");
      }
    }
    everOpened = true;
  });
  document.addEventListener("htmx:wsClose", function (event) {
    var code = event.detail.event.code;
    if (code === 4401 || code === 4403) {
      setStatus("offline", "offline: sign in again");
    } else {
      setStatus("reconnecting", "reconnecting…");
    }
  });
  document.addEventListener("htmx:wsError", function () {
    setStatus("reconnecting", "reconnecting…");
  });
})();
