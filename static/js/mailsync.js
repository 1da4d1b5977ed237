/* New mail on an open page: the folder counts, the list, the tab title and notifications.
   The server sends the folder list again by itself when it changed (hx-swap-oob);
   this refreshes the message list, when it shows the newest mail, and tells the person. */
(function () {
  "use strict";

  var baseTitle = document.title;
  var lastToken = null;
  var lastUnread = null;

  function listedUids() {
    var uids = {};
    document.querySelectorAll("#message-list tr.message-row[data-uid]").forEach(function (row) {
      uids[row.dataset.uid] = true;
    });
    return uids;
  }

  function newRows(before) {
    return Array.prototype.filter.call(
      document.querySelectorAll("#message-list tr.message-row.unread[data-uid]"),
      function (row) { return !before[row.dataset.uid]; }
    );
  }

  function text(row, selector) {
    var cell = row.querySelector(selector);
    return cell ? cell.textContent.trim() : "";
  }

  function notify(count, rows) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) {
      return;
    }
    var title, body;
    if (rows.length === 1) {
      title = text(rows[0], "td.from bdi, td.from em");
      body = text(rows[0], "td.subject a");
    } else {
      title = interpolate(
        ngettext("%s new message", "%s new messages", count), [count]
      );
      body = document.getElementById("sync-status").dataset.account || "";
    }
    var note = new Notification(title, { body: body, tag: "facteur-new-mail" });
    note.onclick = function () { window.focus(); note.close(); };
  }

  function showTitle(unread) {
    document.title = unread > 0 ? "(" + unread + ") " + baseTitle : baseTitle;
  }

  function update() {
    var status = document.getElementById("sync-status");
    if (!status) {
      return;
    }
    var token = status.dataset.token;
    var unread = parseInt(status.dataset.unread, 10);
    if (!isNaN(unread)) {
      showTitle(unread);
    }
    var changed = lastToken !== null && token !== lastToken;
    // A selection in progress is not wiped: the list is refreshed once it is cleared.
    if (changed && document.querySelector("#message-list form[data-selection] input:checked")) {
      return;
    }
    var arrived = !isNaN(unread) && lastUnread !== null && unread > lastUnread ? unread - lastUnread : 0;
    lastToken = token;
    if (!isNaN(unread)) {
      lastUnread = unread;
    }
    if (!changed) {
      return;
    }
    var live = document.querySelector("#message-list [data-refresh-url]");
    if (!live || !window.htmx) {
      if (arrived) {
        notify(arrived, []);
      }
      return;
    }
    var before = listedUids();
    htmx.ajax("GET", live.dataset.refreshUrl, { target: "#message-list", swap: "innerHTML" })
      .then(function () {
        if (arrived) {
          notify(arrived, newRows(before));
        }
      });
  }

  function offerNotifications() {
    var button = document.querySelector("[data-enable-notifications]");
    if (!button || !("Notification" in window) || Notification.permission !== "default") {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function () { button.hidden = true; });
    });
  }

  document.addEventListener("htmx:afterSettle", update);
  document.addEventListener("DOMContentLoaded", function () {
    update();
    offerNotifications();
  });
})();
