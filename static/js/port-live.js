// Live port page: a resync whenever the page may have missed a change
// (after a reconnect, and after a Terminate or Stop answer re-rendered the port's sections).
// The sections themselves come from the server (ports/port_consumer.py) and are swapped by id.
(function () {
  "use strict";
  var socket = null;

  function resync() {
    var rendered = document.querySelector("#port-detail [data-rendered-at]");
    if (socket && rendered) {
      socket.send(JSON.stringify({ since: Number(rendered.dataset.renderedAt) || 0 }));
    }
  }

  PortsideLive.onOpen(function (opened) {
    socket = opened;
    resync(); // anything that changed between the page's render and this socket's opening
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    // A Terminate or Stop answer re-renders #port-detail: the sections it carries may be older
    // than a change the socket already pushed.
    if (event.detail.target && event.detail.target.id === "port-detail") resync();
  });
})();
