// Live port page: the connection status, and a resync whenever the page may have missed a change
// (after a reconnect, and after a Terminate or Stop answer re-rendered the port's sections).
// The sections themselves come from the server (ports/port_consumer.py) and are swapped by id.
(function () {
  "use strict";
  var socket = null;
  var everOpened = false;

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

  function resync() {
    var rendered = document.querySelector("#port-detail [data-rendered-at]");
    if (socket && rendered) {
      socket.send(JSON.stringify({ since: Number(rendered.dataset.renderedAt) || 0 }));
    }
  }

  document.addEventListener("htmx:wsConnecting", function () {
    setStatus(everOpened ? "reconnecting" : "connecting", everOpened ? "reconnecting…" : "connecting…");
  });
  document.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.socketWrapper;
    everOpened = true;
    setStatus("live", "live");
    resync(); // anything that changed between the page's render and this socket's opening
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
  document.addEventListener("htmx:afterSwap", function (event) {
    // A Terminate or Stop answer re-renders #port-detail: the sections it carries may be older
    // than a change the socket already pushed.
    if (event.detail.target && event.detail.target.id === "port-detail") resync();
  });
})();
