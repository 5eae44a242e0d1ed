// Keyboard shortcuts of every page: "/" goes to the page's search box, "?" lists the shortcuts,
// Esc closes an open confirmation or dialog. Never while the person types in a field.
(function () {
  "use strict";

  function typing(target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    // A checkbox or a button takes no text: "/" there is not typing.
    return !/^(checkbox|radio|button|submit|reset|file|color|range|image)$/i.test(target.type);
  }

  function visible(element) {
    return !!(element.offsetWidth || element.offsetHeight || element.getClientRects().length);
  }

  function searchBox() {
    var boxes = document.querySelectorAll("input[type=search], [data-search]");
    for (var i = 0; i < boxes.length; i++) {
      if (visible(boxes[i]) && !boxes[i].disabled) return boxes[i];
    }
    return null;
  }

  function openShortcuts() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  function cancelOf(confirmation) {
    var marked = confirmation.querySelector("[data-cancel]");
    if (marked) return marked;
    var controls = confirmation.querySelectorAll("a, button");
    for (var i = 0; i < controls.length; i++) {
      if (controls[i].textContent.trim() === "Cancel") return controls[i];
    }
    return null;
  }

  // A confirmation card ([data-confirm], or the pages' .card.confirm) closes through its own
  // Cancel, so the page's state (and the URL Cancel leads to) stays the server's; without a
  // Cancel it is hidden.
  function closeConfirmation() {
    var open = document.querySelectorAll("[data-confirm], .card.confirm");
    for (var i = open.length - 1; i >= 0; i--) {
      var confirmation = open[i];
      if (!visible(confirmation)) continue;
      var cancel = cancelOf(confirmation);
      if (cancel) cancel.click();
      else confirmation.hidden = true;
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      // An open modal <dialog> and an open popover close themselves on Esc.
      if (document.querySelector("dialog[open]")) return;
      var menu = document.querySelector("details.user-menu[open]");
      if (menu) {
        menu.open = false;
        menu.querySelector("summary").focus();
        event.preventDefault();
        return;
      }
      if (closeConfirmation()) event.preventDefault();
      return;
    }
    if (typing(event.target) || document.querySelector("dialog[open]")) return;
    if (event.key === "/") {
      var box = searchBox();
      if (box) {
        event.preventDefault();
        box.focus();
        if (box.select) box.select();
      }
    } else if (event.key === "?") {
      event.preventDefault();
      openShortcuts();
    }
  });

  // Browsers without invoker commands (command="show-modal") open the list from the footer here.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest("[data-shortcuts]");
    if (button && !("command" in HTMLButtonElement.prototype)) openShortcuts();
  });
})();
