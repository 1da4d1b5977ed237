/* Keyboard shortcuts, as in Gmail: j/k to move through the list, o or Enter to open,
   u back to the list, r/a/f to answer, e to archive, # to delete, s to flag, / to search,
   c to write, ? for help. On the list, e, # and s act on the checked messages, or else
   on the highlighted one.
   Each one clicks a link or a form that the page already shows, so it does nothing
   that the page does not offer. Typing in a field, or with Ctrl, Alt or Meta held,
   is never taken for a shortcut. */
(function () {
  "use strict";

  var CURRENT = "is-keyboard-current";
  // The messages of the last list shown, for j and k on a message page.
  var LIST_KEY = "facteur.shortcuts.list";

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#message-list tr.message-row"));
  }

  function rowLink(row) {
    return row && row.querySelector("td.subject a[href]");
  }

  function currentRow() {
    return document.querySelector("#message-list tr.message-row." + CURRENT);
  }

  function highlight(row) {
    var previous = currentRow();
    if (previous) {
      previous.classList.remove(CURRENT);
      previous.removeAttribute("aria-current");
    }
    row.classList.add(CURRENT);
    row.setAttribute("aria-current", "true");
    row.scrollIntoView({ block: "nearest" });
    document.body.dataset.keyboardUid = row.dataset.uid || "";
  }

  // Where a message page is in the list: the same message (path) of the same folder.
  function sameMessage(a, b) {
    return a.pathname === b.pathname &&
      a.searchParams.get("folder") === b.searchParams.get("folder");
  }

  function rememberList() {
    var links = rows().map(rowLink).filter(Boolean);
    try {
      sessionStorage.setItem(LIST_KEY, JSON.stringify({
        list: window.location.href,
        messages: links.map(function (link) { return link.href; })
      }));
    } catch (e) { /* storage refused: j and k then lead back to the list */ }
  }

  function rememberedList() {
    try {
      return JSON.parse(sessionStorage.getItem(LIST_KEY) || "null");
    } catch (e) {
      return null;
    }
  }

  // A message (or a conversation) page: its toolbar acts on what it shows.
  var TOOLBAR = "article > .message-toolbar";

  function isMessagePage() {
    return !!document.querySelector(TOOLBAR);
  }

  function endsWith(url, ending) {
    var path = new URL(url, window.location.href).pathname;
    return path.slice(-ending.length) === ending;
  }

  // The toolbar link of a message page whose address carries this query parameter.
  function toolbarLink(parameter) {
    var links = document.querySelectorAll(TOOLBAR + " a[href]");
    for (var i = 0; i < links.length; i++) {
      if (new URL(links[i].href).searchParams.has(parameter)) {
        return links[i];
      }
    }
    return null;
  }

  // The submit button of the message page's form, or of the list's selection form,
  // that posts to the action whose path ends with `ending` ("/archive/", ...).
  function actionButton(ending) {
    if (isMessagePage()) {
      var forms = document.querySelectorAll(TOOLBAR + " form[action]");
      for (var i = 0; i < forms.length; i++) {
        if (endsWith(forms[i].getAttribute("action"), ending)) {
          return forms[i].querySelector("button[type=submit], button:not([type])");
        }
      }
      return null;
    }
    var buttons = document.querySelectorAll("#message-list form[data-selection] button[formaction]");
    for (var j = 0; j < buttons.length; j++) {
      if (endsWith(buttons[j].getAttribute("formaction"), ending)) {
        return buttons[j];
      }
    }
    return null;
  }

  // The list rows an action is for: those checked, or else the highlighted one.
  function chosenRows() {
    var checked = rows().filter(function (row) {
      var box = row.querySelector("input[name=uid]");
      return box && box.checked;
    });
    if (checked.length) {
      return checked;
    }
    var current = currentRow();
    return current && current.querySelector("input[name=uid]") ? [current] : [];
  }

  // An action of the message page, or of the list for the rows chosen there.
  function action(ending) {
    var button = actionButton(ending);
    if (!button || isMessagePage()) {
      return button;
    }
    var chosen = chosenRows();
    return chosen.length ? {
      run: function () {
        chosen.forEach(function (row) {
          var box = row.querySelector("input[name=uid]");
          if (!box.checked) {
            box.checked = true;
            box.dispatchEvent(new Event("change", { bubbles: true }));
          }
        });
        button.click();
      }
    } : null;
  }

  // s flags the chosen messages, or unflags them when they all are flagged.
  function toggleFlag() {
    var chosen = isMessagePage() ? [] : chosenRows();
    var flagged = chosen.length && chosen.every(function (row) {
      return row.classList.contains("flagged");
    });
    return action(flagged ? "/unflag/" : "/flag/");
  }

  // Where this message page is in the list it was opened from; -1 when it is not there.
  function placeInList(remembered) {
    var here = new URL(window.location.href);
    var messages = remembered ? remembered.messages : [];
    for (var i = 0; i < messages.length; i++) {
      if (sameMessage(new URL(messages[i]), here)) {
        return i;
      }
    }
    return -1;
  }

  function backToList() {
    var remembered = rememberedList();
    if (placeInList(remembered) !== -1) {
      return { href: remembered.list };
    }
    // The folder's own entry in the folder pane leads to its list.
    return document.querySelector("#folder-list a[aria-current=page]");
  }

  // On a message page, the message `step` places away in the list, or that list.
  function neighbour(step) {
    var remembered = rememberedList();
    var index = placeInList(remembered);
    if (index === -1) {
      return backToList();
    }
    var next = remembered.messages[index + step];
    return next ? { href: next } : null;
  }

  function move(step) {
    if (isMessagePage()) {
      return neighbour(step);
    }
    var all = rows();
    if (!all.length) {
      return null;
    }
    var index = all.indexOf(currentRow());
    var next = index === -1 ? all[0] : all[Math.min(all.length - 1, Math.max(0, index + step))];
    return { run: function () { highlight(next); } };
  }

  function openCurrent() {
    return rowLink(currentRow());
  }

  // o opens the highlighted message, or the first one when none is.
  function openCurrentOrFirst() {
    return openCurrent() || rowLink(rows()[0]);
  }

  function follow(target) {
    if (target.run) {
      target.run();
    } else if (target.click) {
      target.click();
    } else {
      window.location.assign(target.href);
    }
  }

  function help() {
    var dialog = document.getElementById("shortcuts-help");
    if (!dialog || !dialog.showModal) {
      return null;
    }
    return {
      run: function () {
        if (dialog.open) {
          dialog.close();
          return;
        }
        // Only what this page offers is listed.
        dialog.querySelectorAll("[data-shortcut-keys]").forEach(function (entry) {
          entry.hidden = !entry.dataset.shortcutKeys.split(" ").some(available);
        });
        dialog.showModal();
      }
    };
  }

  // Each key finds what it acts on, or nothing where the page does not offer it.
  var SHORTCUTS = {
    j: function () { return move(1); },
    k: function () { return move(-1); },
    o: openCurrentOrFirst,
    Enter: openCurrent,
    u: function () { return isMessagePage() ? backToList() : null; },
    r: function () { return toolbarLink("reply"); },
    a: function () { return toolbarLink("reply_all"); },
    f: function () { return toolbarLink("forward"); },
    e: function () { return action("/archive/"); },
    "#": function () { return action("/delete/"); },
    s: toggleFlag,
    "/": function () {
      var search = document.getElementById("search-input");
      return search && { run: function () { search.focus(); search.select(); } };
    },
    c: function () { return document.querySelector(".compose-button[href]"); },
    "?": help
  };

  // A message being written is never left by a stray key.
  function writing() {
    return !!document.getElementById("compose-form");
  }

  function available(key) {
    return (!writing() || key === "?") && !!SHORTCUTS[key]();
  }

  function typing(element) {
    return element && element.closest &&
      (element.closest("input, textarea, select, [contenteditable]") || element.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey ||
        event.isComposing || !Object.prototype.hasOwnProperty.call(SHORTCUTS, event.key)) {
      return;
    }
    if (typing(event.target) || (writing() && event.key !== "?")) {
      return;
    }
    var dialog = document.querySelector("dialog[open]");
    if (dialog && !(dialog.id === "shortcuts-help" && event.key === "?")) {
      return;
    }
    // Enter on a link or a button is theirs.
    if (event.key === "Enter" && event.target.closest && event.target.closest("a, button, summary")) {
      return;
    }
    var target = SHORTCUTS[event.key]();
    if (target) {
      event.preventDefault();
      follow(target);
    }
  });

  if (document.getElementById("message-list")) {
    rememberList();
    // The list is replaced by paging, sorting and new mail: keep the place and the record.
    document.body.addEventListener("htmx:afterSettle", function () {
      var uid = document.body.dataset.keyboardUid;
      var row = uid && document.querySelector('#message-list tr.message-row[data-uid="' + uid + '"]');
      if (row) {
        highlight(row);
      }
      rememberList();
    });
  }
})();
