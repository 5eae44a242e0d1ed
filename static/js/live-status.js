// The connection of a live page (htmx's ws extension), shared by the Ports list, a port's page
// and the Health pages: quick reconnects, the #live-status badge, and a hook for what the page
// does once its socket opens. Page scripts call PortsideLive.onOpen(function (socket, again)).
(function () {
  "use strict";
  var everOpened = false;
  var openHandlers = [];

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
  document.addEventListener("htmx:wsOpen", function (event) {
    setStatus("live", "live");
    var again = everOpened; // a reconnect: changes may have been missed meanwhile
    everOpened = true;
    openHandlers.forEach(function (handler) {
      handler(event.detail.socketWrapper, again);
    });
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

  window.PortsideLive = {
    onOpen: function (handler) {
      openHandlers.push(handler);
    },
  };
})();
