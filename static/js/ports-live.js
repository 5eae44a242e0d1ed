// Live Ports page: re-sending the filter after a reconnect, slotting pushed
// rows into the table's order (and under their server when grouped), taking named rows off,
// the live notices (local time, dismiss, fade, fold a burst into one), and copy buttons.
// The rows themselves come from the server.
(function () {
  "use strict";
  var MAX_NOTICES = 5; // more than this at once fold into "N ports changed"
  var SUMMARY_ITEMS = 50; // lines a folded notice keeps

  PortsideLive.onOpen(function (socket, again) {
    if (!again) return;
    // The server forgot our filter and we may have missed changes: ask for a full resync.
    var filter = document.getElementById("live-filter");
    if (filter) {
      filter.querySelector("input[name=since]").value = "0";
      htmx.trigger(filter, "resend");
    }
  });

  // -- rows ---------------------------------------------------------------------------------

  function isHeader(row) {
    return row.classList.contains("server-group");
  }

  function later(key, otherKey, descending) {
    return descending ? otherKey < key : otherKey > key;
  }

  function groupRows(body, group) {
    return Array.prototype.filter.call(
      body.querySelectorAll("tr[data-group]:not(.server-group)"),
      function (row) { return row.dataset.group === group; }
    );
  }

  function placeHeader(body, header) {
    // Groups stay in name order whatever the sort: the sort orders rows inside each group.
    var headers = body.querySelectorAll("tr.server-group");
    for (var i = 0; i < headers.length; i++) {
      if (headers[i] !== header && headers[i].dataset.sort > header.dataset.sort) {
        body.insertBefore(header, headers[i]);
        return;
      }
    }
    body.appendChild(header);
  }

  function placeInGroup(body, row, descending) {
    var header = document.getElementById(row.dataset.group);
    var members = groupRows(body, row.dataset.group).filter(function (other) { return other !== row; });
    var key = row.dataset.sort || "";
    for (var i = 0; i < members.length; i++) {
      if (later(key, members[i].dataset.sort || "", descending)) {
        body.insertBefore(row, members[i]);
        return;
      }
    }
    var last = members.length ? members[members.length - 1] : header;
    if (last && last.parentNode === body) {
      body.insertBefore(row, last.nextSibling);
    } else {
      body.appendChild(row);
    }
  }

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
    if (isHeader(row)) {
      placeHeader(body, row);
      return;
    }
    if (row.dataset.group) {
      placeInGroup(body, row, descending);
      return;
    }
    var key = row.dataset.sort || "";
    var rows = body.querySelectorAll("tr[data-sort]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i] !== row && later(key, rows[i].dataset.sort || "", descending)) {
        body.insertBefore(row, rows[i]);
        return;
      }
    }
    body.appendChild(row);
  }

  // Rows whose details a person opened: a resync or a new owner draws them anew, open again.
  var keepOpen = new Set();

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches("details.row-more")) return;
    var row = details.closest("tr");
    if (details.open) { keepOpen.add(row.id); } else { keepOpen.delete(row.id); }
  }, true); // toggle does not bubble

  function reopen(container) {
    if (!keepOpen.size) return;
    var rows = container.matches("tr") ? [container] : container.querySelectorAll("tr[id]");
    rows.forEach(function (row) {
      var details = keepOpen.has(row.id) && row.querySelector("details.row-more");
      if (details && !details.open) details.open = true;
    });
  }

  function removeNamed(marker) {
    var target = document.getElementById(marker.dataset.remove);
    if (target && target.closest("#port-rows")) target.remove();
    marker.remove();
  }

  // Counts are written only when they changed: a write is a mutation, and the observer must rest.
  function writeText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function recount(root) {
    var body = root.querySelector("#port-rows");
    if (!body) return;
    writeText(document.getElementById("shown-count"),
      String(body.querySelectorAll("tr[data-sort]:not(.server-group)").length));
    root.querySelectorAll(".group-count[data-count-of]").forEach(function (count) {
      var n = groupRows(body, count.dataset.countOf).length;
      writeText(count, n + (n === 1 ? " socket" : " sockets"));
    });
  }

  // -- notices ------------------------------------------------------------------------------

  function localTime(time) {
    var when = new Date(time.getAttribute("datetime"));
    if (!isNaN(when)) {
      writeText(time, when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }));
    }
  }

  function restartFade(notice) {
    // CSSOM, not a style attribute: the page's CSP allows it.
    notice.style.animation = "none";
    void notice.offsetWidth;
    notice.style.animation = "";
  }

  function summaryOf(container) {
    var summary = container.querySelector(".live-summary");
    if (summary) return summary;
    summary = document.createElement("div");
    summary.className = "live-notice live-summary";
    summary.innerHTML = '<time></time> <span class="notice-text"></span> ' +
      '<button type="button" class="notice-close">×</button>' +
      '<details><summary>Show the changes</summary><ul class="summary-list"></ul></details>';
    summary.ports = new Set();
    container.prepend(summary);
    return summary;
  }

  function fold(container) {
    var singles = container.querySelectorAll(".live-notice:not(.live-summary)");
    var summary = container.querySelector(".live-summary");
    if (!summary && singles.length <= MAX_NOTICES) return;
    summary = summaryOf(container);
    var list = summary.querySelector(".summary-list");
    var newest = singles.length ? singles[0].querySelector("time") : null;
    if (newest) {
      var time = summary.querySelector("time");
      time.setAttribute("datetime", newest.getAttribute("datetime"));
      writeText(time, newest.textContent);
    }
    // Oldest first into the list, so the newest ends on top.
    for (var i = singles.length - 1; i >= 0; i--) {
      var item = document.createElement("li");
      item.textContent = singles[i].textContent.replace("×", "").replace(/\s+/g, " ").trim();
      list.prepend(item);
      if (singles[i].dataset.port) summary.ports.add(singles[i].dataset.port);
      singles[i].remove();
    }
    while (list.children.length > SUMMARY_ITEMS) list.lastElementChild.remove();
    var n = summary.ports.size;
    var text = n + (n === 1 ? " port changed" : " ports changed");
    writeText(summary.querySelector(".notice-text"), text);
    summary.querySelector(".notice-close").setAttribute("aria-label", "Dismiss: " + text);
    restartFade(summary);
  }

  // -- copy buttons -------------------------------------------------------------------------

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain http on a LAN address is no secure context: the older way still copies.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var done = document.execCommand("copy");
      area.remove();
      if (done) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest(".notice-close");
    if (close) {
      close.closest(".live-notice").remove();
      return;
    }
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var status = button.parentNode.querySelector(".copy-status");
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    copyText(button.dataset.copy).then(function () {
      button.textContent = "Copied ✓";
      writeText(status, "Copied: " + button.dataset.copy);
    }, function () {
      writeText(status, "Could not copy: select the text and copy it by hand.");
    });
    setTimeout(function () { button.textContent = label; }, 2000);
  });

  document.addEventListener("animationend", function (event) {
    if (event.animationName === "notice-fade" && event.target.matches(".live-notice")) {
      event.target.remove();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("live-ports");
    if (!root) return;
    var notices = document.getElementById("live-notices");
    recount(root);
    new MutationObserver(function (mutations) {
      var noticesAdded = false;
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (node.matches("tr.just-opened")) place(node);
          if (node.matches("#port-rows, #port-rows > tr")) reopen(node);
          if (node.matches("[data-remove]")) removeNamed(node);
          if (node.matches(".live-notice:not(.live-summary)")) {
            node.querySelectorAll("time[datetime]").forEach(localTime);
            noticesAdded = true;
          }
        });
      });
      if (noticesAdded && notices) fold(notices);
      recount(root);
    }).observe(root, { childList: true, subtree: true });
  });
})();
