// Live Ports page: connection status, re-sending the filter after a reconnect, and slotting
// pushed rows into the table's current sort order. The rows themselves come from the server.
(function () {
  "use strict";
  var MAX_NOTICES = 5;
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
      // The server forgot our filter and we may have missed changes: ask for a full resync.
      var filter = document.getElementById("live-filter");
      if (filter) {
        filter.querySelector("input[name=since]").value = "0";
        htmx.trigger(filter, "resend");
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

  function place(row) {
    var body = row.parentNode;
    // Moving the row is itself a mutation: place each row once, or the observer never rests.
    if (!body || body.id !== "port-rows" || row.dataset.placed) return;
    row.dataset.placed = "1";
    document.querySelectorAll('[id="' + row.id + '"]').forEach(function (other) {
      if (other !== row) other.remove();
    });
    body.querySelectorAll("tr.empty-row").forEach(function (empty) { empty.remove(); });
    var descending = body.dataset.descending === "1";
    var key = row.dataset.sort || "";
    var rows = body.querySelectorAll("tr[data-sort]");
    for (var i = 0; i < rows.length; i++) {
      var other = rows[i];
      if (other === row) continue;
      var otherKey = other.dataset.sort || "";
      if (descending ? otherKey < key : otherKey > key) {
        body.insertBefore(row, other);
        return;
      }
    }
    body.appendChild(row);
  }

  function trimNotices(container) {
    while (container.children.length > MAX_NOTICES) container.lastElementChild.remove();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("live-ports");
    if (!root) return;
    new MutationObserver(function (mutations) {
      // Writing the count is a mutation too: write only when it changed, or this never rests.
      var shown = document.getElementById("shown-count");
      var count = String(root.querySelectorAll("#port-rows tr[data-sort]").length);
      if (shown && shown.textContent !== count) shown.textContent = count;
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (node.matches("tr.just-opened")) place(node);
          if (node.matches(".live-notice")) trimNotices(node.parentNode);
        });
      });
    }).observe(root, { childList: true, subtree: true });
  });
})();
