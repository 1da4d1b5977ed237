/* Selecting messages in the list: the actions appear once something is checked,
   a box checks the whole page, shift-click checks a range, and once the page is
   checked every message of the folder can be chosen. Selected rows (or one row)
   dragged onto a folder of the folder pane move there. Without this script the
   list's form still works: its rows have checkboxes and its actions are buttons. */
(function () {
  "use strict";

  var lastClicked = null; // the row checkbox a shift-click extends from
  var dragged = null; // what a drag carries: {uids: [...], all: bool}

  function form() {
    return document.querySelector("form[data-selection]");
  }

  function rowBoxes(scope) {
    return Array.prototype.slice.call(scope.querySelectorAll("tr.message-row input[name=uid]"));
  }

  function allBox(scope) {
    return scope.querySelector("[data-select-all]");
  }

  function show(element, visible) {
    if (element) {
      element.hidden = !visible;
    }
  }

  // The toolbar, the page box, the count and the folder offer follow the boxes.
  function refresh(scope) {
    var boxes = rowBoxes(scope);
    var checked = boxes.filter(function (box) { return box.checked; }).length;
    var all = allBox(scope);
    if (all && checked < boxes.length) {
      all.checked = false;
    }
    var everything = !!(all && all.checked);
    var page = scope.querySelector("[data-select-page]");
    if (page) {
      page.checked = boxes.length > 0 && checked === boxes.length;
      page.indeterminate = checked > 0 && checked < boxes.length;
    }
    scope.classList.toggle("has-selection", checked > 0);
    boxes.forEach(function (box) {
      box.closest("tr").classList.toggle("is-selected", box.checked);
    });
    var count = scope.querySelector("[data-selection-count]");
    if (count) {
      count.textContent = checked && !everything
        ? interpolate(ngettext("%s selected", "%s selected", checked), [checked])
        : "";
    }
    var offer = scope.querySelector("[data-select-folder]");
    show(offer, checked > 0 && checked === boxes.length);
    show(scope.querySelector("[data-select-folder-offer]"), !everything);
    show(scope.querySelector("[data-select-folder-done]"), everything);
    show(scope.querySelector("[data-clear-selection]"), everything);
  }

  function setup() {
    var scope = form();
    if (!scope || scope.hasAttribute("data-selection-ready")) {
      return;
    }
    scope.setAttribute("data-selection-ready", "");
    show(scope.querySelector("[data-select-page-box]"), true);
    // Dragging needs a mouse; on a touch screen a long press scrolls or selects text.
    var mouse = window.matchMedia && window.matchMedia("(pointer: fine)").matches;
    scope.querySelectorAll("tr.message-row").forEach(function (row) {
      row.draggable = mouse;
    });
    lastClicked = null;
    refresh(scope);
  }

  document.addEventListener("click", function (event) {
    var scope = event.target.closest && event.target.closest("form[data-selection]");
    if (!scope) {
      return;
    }
    var box = event.target.closest("tr.message-row input[name=uid]");
    if (box) {
      var boxes = rowBoxes(scope);
      if (event.shiftKey && lastClicked && boxes.indexOf(lastClicked) !== -1) {
        var from = boxes.indexOf(lastClicked);
        var to = boxes.indexOf(box);
        boxes.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (other) {
          other.checked = box.checked;
        });
      }
      lastClicked = box;
      refresh(scope);
      return;
    }
    if (event.target.closest("[data-clear-selection]")) {
      rowBoxes(scope).forEach(function (other) { other.checked = false; });
      refresh(scope);
    }
  });

  document.addEventListener("change", function (event) {
    var scope = event.target.closest && event.target.closest("form[data-selection]");
    if (!scope) {
      return;
    }
    if (event.target.matches("[data-select-page]")) {
      var checked = event.target.checked;
      rowBoxes(scope).forEach(function (box) { box.checked = checked; });
    }
    if (event.target.matches("[data-select-all]") && event.target.checked) {
      rowBoxes(scope).forEach(function (box) { box.checked = true; });
    }
    refresh(scope);
  });

  // One folder menu open at a time ("toggle" does not bubble: listened to on the way down).
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!menu.matches || !menu.matches(".selection-menu") || !menu.open) {
      return;
    }
    document.querySelectorAll(".selection-menu[open]").forEach(function (other) {
      if (other !== menu) {
        other.open = false;
      }
    });
  }, true);

  // A deletion for good is confirmed first; the server asks itself when this does not.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!event.target.matches("form[data-selection]") || !button || !button.dataset.confirm) {
      return;
    }
    if (!window.confirm(button.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    var confirmed = document.createElement("input");
    confirmed.type = "hidden";
    confirmed.name = "confirm";
    confirmed.value = "1";
    event.target.appendChild(confirmed);
  });

  // Drag and drop onto the folder pane --------------------------------------------

  function folderOf(link) {
    try {
      return new URL(link.href).searchParams.get("folder") || "INBOX";
    } catch (e) {
      return null;
    }
  }

  function dropTarget(event) {
    var link = event.target.closest && event.target.closest("#folder-list a[href]");
    var scope = form();
    if (!link || !dragged || !scope) {
      return null;
    }
    var current = new URL(scope.action).searchParams.get("folder") || "INBOX";
    var name = folderOf(link);
    return name && name !== current ? { link: link, name: name } : null;
  }

  function hidden(name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  document.addEventListener("dragstart", function (event) {
    var row = event.target.closest && event.target.closest("form[data-selection] tr.message-row");
    if (!row) {
      return;
    }
    var scope = row.closest("form");
    var box = row.querySelector("input[name=uid]");
    var all = allBox(scope);
    if (box && box.checked) {
      dragged = {
        uids: rowBoxes(scope).filter(function (b) { return b.checked; }).map(function (b) { return b.value; }),
        all: !!(all && all.checked)
      };
    } else {
      dragged = { uids: [box ? box.value : row.dataset.uid], all: false };
    }
    // A conversation's box holds all its UIDs, separated by commas.
    var count = dragged.uids.join(",").split(",").length;
    var label = dragged.all
      ? gettext("Every message of this folder")
      : interpolate(ngettext("%s message", "%s messages", count), [count]);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", label);
    var ghost = document.createElement("div");
    ghost.className = "drag-ghost";
    ghost.textContent = label;
    document.body.appendChild(ghost);
    event.dataTransfer.setDragImage(ghost, 10, 10);
    window.setTimeout(function () { ghost.remove(); }, 0);
    document.body.classList.add("is-dragging-mail");
  });

  document.addEventListener("dragend", function () {
    dragged = null;
    document.body.classList.remove("is-dragging-mail");
    document.querySelectorAll("#folder-list .is-drop-target").forEach(function (link) {
      link.classList.remove("is-drop-target");
    });
  });

  document.addEventListener("dragover", function (event) {
    var target = dropTarget(event);
    if (target) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      target.link.classList.add("is-drop-target");
    }
  });

  document.addEventListener("dragleave", function (event) {
    var link = event.target.closest && event.target.closest("#folder-list a[href]");
    if (link && !link.contains(event.relatedTarget)) {
      link.classList.remove("is-drop-target");
    }
  });

  document.addEventListener("drop", function (event) {
    var target = dropTarget(event);
    var scope = form();
    if (!target || !scope) {
      return;
    }
    event.preventDefault();
    // The list's own form would send every checked row: a row dragged alone goes alone.
    var post = document.createElement("form");
    post.method = "post";
    post.action = scope.action;
    post.hidden = true;
    ["csrfmiddlewaretoken", "page", "sort", "dir"].forEach(function (name) {
      var field = scope.querySelector("input[name=" + name + "]");
      if (field) {
        post.appendChild(hidden(name, field.value));
      }
    });
    dragged.uids.forEach(function (uid) { post.appendChild(hidden("uid", uid)); });
    if (dragged.all) {
      post.appendChild(hidden("scope", "all"));
    }
    post.appendChild(hidden("target", target.name));
    document.body.appendChild(post);
    post.submit();
  });

  document.addEventListener("DOMContentLoaded", setup);
  document.addEventListener("htmx:afterSettle", setup);
  // Back from a message, the browser may show the page as it was left.
  window.addEventListener("pageshow", function () {
    var scope = form();
    if (scope) {
      refresh(scope);
    }
  });
})();
