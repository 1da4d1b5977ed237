/* The compose form: drafts saved as one writes, attachments, address suggestions.
   Without this script the form still sends, saves and attaches nothing more. */
(function () {
  "use strict";

  var form = document.getElementById("compose-form");
  if (!form) { return; }

  // Not form.action: the buttons named "action" shadow that property.
  var postUrl = form.getAttribute("action");
  var status = document.getElementById("compose-status");
  var draftUid = document.getElementById("compose-draft-uid");
  var richInput = document.getElementById("compose-rich");
  var body = document.getElementById("compose-body");
  var textArea = document.getElementById("compose-text");
  var htmlInput = document.getElementById("compose-html");
  var uploadList = document.getElementById("upload-list");
  var uploadError = document.getElementById("upload-error");
  var maxSize = parseInt(form.dataset.maxUploadSize, 10);
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var dirty = false;
  var saving = null;
  var sending = false;
  var pendingUploads = 0;

  function say(text) { status.textContent = text; }

  function editor() { return form.querySelector("trix-editor"); }

  function isRich() { return richInput.value === "1"; }

  function markDirty() { dirty = true; }

  // Saving drafts ---------------------------------------------------------------

  function formData(action) {
    var data = new FormData(form);
    data.set("action", action);
    return data;
  }

  // Parts taken from another message were kept as uploads by the save: the
  // draft they came from may be gone, so the form names the uploads from now on.
  function keepCarried(kept) {
    kept.forEach(function (entry) {
      uploadList.querySelectorAll("input[name=carried]").forEach(function (input) {
        if (input.value !== entry.carried) { return; }
        input.name = "attachments";
        input.value = entry.id;
        input.closest("li").querySelector(".upload-remove").dataset.deleteUrl = entry.delete_url;
      });
    });
  }

  // The form's own errors, as Django's errors.get_json_data() gives them.
  function firstError(errors) {
    var first = "";
    Object.keys(errors || {}).some(function (field) {
      first = (errors[field][0] || {}).message || "";
      return first;
    });
    return first;
  }

  function save(keepalive) {
    if (sending || !dirty) { return saving || Promise.resolve(); }
    if (saving) { return saving; }
    dirty = false;
    say(gettext("Saving…"));
    saving = fetch(postUrl, {
      method: "POST",
      body: formData("save"),
      headers: { "Accept": "application/json", "X-CSRFToken": csrf },
      credentials: "same-origin",
      keepalive: !!keepalive
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (response.ok) {
          if (answer.draft_uid) { draftUid.value = answer.draft_uid; }
          keepCarried(answer.carried || []);
          say(answer.saved);
        } else {
          dirty = true;
          say(answer.error || firstError(answer.errors) || gettext("The draft could not be saved."));
        }
      });
    }).catch(function () {
      dirty = true;
      say(gettext("The draft could not be saved; it will be tried again."));
    }).then(function () { saving = null; });
    return saving;
  }

  form.addEventListener("input", markDirty);
  form.addEventListener("change", markDirty);
  document.addEventListener("trix-change", markDirty);
  window.setInterval(save, Math.max(2, parseInt(form.dataset.autosaveSeconds, 10)) * 1000);
  // A page being hidden may be on its way out: only a keepalive request outlives
  // it, and browsers cap those at 64 kB; a longer text goes in an ordinary one.
  function leaving() {
    save(htmlInput.value.length + textArea.value.length < 60000);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { leaving(); }
  });
  window.addEventListener("pagehide", leaving);

  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (pendingUploads > 0) {
      event.preventDefault();
      say(gettext("Wait until the attachments are uploaded."));
      return;
    }
    if (submitter && submitter.value === "save") { return; }
    // A save still on its way would create a draft after the message is sent.
    if (saving) {
      event.preventDefault();
      saving.then(function () { form.requestSubmit(submitter); });
      return;
    }
    sending = true;
  });

  // Rich text and plain text ----------------------------------------------------

  var formatButton = document.getElementById("compose-format");
  formatButton.addEventListener("click", function () {
    if (isRich()) {
      var data = new FormData();
      data.set("html", htmlInput.value);
      fetch(form.dataset.plainTextUrl, {
        method: "POST", body: data, headers: { "X-CSRFToken": csrf }, credentials: "same-origin"
      }).then(function (response) { return response.json(); }).then(function (answer) {
        textArea.value = answer.text;
        setRich(false);
      });
    } else {
      var html = textArea.value.split("\n").map(function (line) {
        var div = document.createElement("div");
        div.textContent = line;
        return line ? div.outerHTML : "<div><br></div>";
      }).join("");
      editor().editor.loadHTML(html);
      setRich(true);
    }
  });

  function setRich(rich) {
    richInput.value = rich ? "1" : "";
    body.classList.toggle("is-rich", rich);
    body.classList.toggle("is-plain", !rich);
    formatButton.textContent = rich ? formatButton.dataset.labelPlain : formatButton.dataset.labelRich;
    markDirty();
  }

  // Cc and Bcc ------------------------------------------------------------------

  form.addEventListener("click", function (event) {
    var show = event.target.closest("[data-show-row]");
    if (show) {
      var row = form.querySelector("[data-row=" + show.dataset.showRow + "]");
      row.classList.remove("optional");
      row.querySelector("input").focus();
      show.hidden = true;
    }
  });
  form.querySelectorAll(".compose-row.optional").forEach(function (row) {
    if (row.querySelector("input").value) { row.classList.remove("optional"); }
  });

  // Signatures follow the identity ------------------------------------------------

  var signatures = JSON.parse(document.getElementById("compose-signatures").textContent);
  var identity = document.getElementById("compose-identity");
  var currentIdentity = identity.value;
  identity.addEventListener("change", function () {
    var before = signatures[currentIdentity];
    var after = signatures[identity.value];
    currentIdentity = identity.value;
    if (isRich()) {
      var trix = editor().editor;
      var text = trix.getDocument().toString();
      var marker = before ? "-- \n" + before : null;
      var at = marker ? text.indexOf(marker) : -1;
      if (at >= 0) {
        trix.setSelectedRange([at, at + marker.length]);
        trix.deleteInDirection("forward");
        if (after) { trix.insertString("-- \n" + after); }
      } else if (after) {
        // Above any quote, below a first line left free for writing.
        trix.setSelectedRange([0, 0]);
        trix.insertString("\n\n-- \n" + after);
        trix.setSelectedRange([0, 0]);
      }
    } else {
      var old = before ? "-- \n" + before + "\n" : null;
      var replacement = after ? "-- \n" + after + "\n" : "";
      if (old && textArea.value.indexOf(old) >= 0) {
        textArea.value = textArea.value.replace(old, replacement);
      } else if (after) {
        textArea.value = "\n\n" + replacement + textArea.value;
      }
    }
    markDirty();
  });

  // Attachments -------------------------------------------------------------------

  function attachedSize() {
    var total = 0;
    uploadList.querySelectorAll("li[data-size]").forEach(function (item) {
      total += parseInt(item.dataset.size, 10);
    });
    return total;
  }

  function formatSize(bytes) {
    var units = [gettext("bytes"), gettext("KB"), gettext("MB"), gettext("GB")];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit ? value.toFixed(1) : value) + "\u00a0" + units[unit];
  }

  function showUploadError(text) {
    uploadError.textContent = text;
    uploadError.hidden = !text;
  }

  function upload(file) {
    if (attachedSize() + file.size > maxSize) {
      showUploadError(interpolate(
        gettext("“%(name)s” is too large: a message may carry %(max)s of attachments."),
        { name: file.name, max: formatSize(maxSize) }, true));
      return;
    }
    showUploadError("");
    var item = document.getElementById("upload-template").content.firstElementChild.cloneNode(true);
    item.dataset.size = file.size;
    item.querySelector(".upload-name").textContent = file.name;
    item.querySelector(".upload-size").textContent = formatSize(file.size);
    var progress = item.querySelector("progress");
    uploadList.appendChild(item);
    pendingUploads += 1;

    var data = new FormData();
    data.set("file", file, file.name);
    var request = new XMLHttpRequest();
    request.open("POST", form.dataset.uploadUrl);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) { progress.value = Math.round(100 * event.loaded / event.total); }
    });
    request.addEventListener("loadend", function () {
      pendingUploads -= 1;
      var answer = {};
      try { answer = JSON.parse(request.responseText); } catch (e) { answer = {}; }
      if (request.status !== 200 || !answer.id) {
        item.remove();
        showUploadError(answer.error || interpolate(
          gettext("“%(name)s” could not be attached."), { name: file.name }, true));
        return;
      }
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "attachments";
      input.value = answer.id;
      item.prepend(input);
      item.classList.add("done");
      progress.remove();
      item.querySelector(".upload-remove").dataset.deleteUrl = answer.delete_url;
      markDirty();
    });
    item.querySelector(".upload-remove").addEventListener("click", function () {
      if (request.readyState !== XMLHttpRequest.DONE) { request.abort(); }
    });
    request.send(data);
  }

  uploadList.addEventListener("click", function (event) {
    var remove = event.target.closest(".upload-remove");
    if (!remove) { return; }
    var item = remove.closest("li");
    if (remove.dataset.deleteUrl) {
      fetch(remove.dataset.deleteUrl, {
        method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin"
      });
    }
    item.remove();
    showUploadError("");
    markDirty();
  });

  document.getElementById("compose-files").addEventListener("change", function (event) {
    Array.prototype.forEach.call(event.target.files, upload);
    event.target.value = "";
  });

  // Dropped anywhere on the form, and pasted or dropped into the editor, files are attached.
  var dragDepth = 0;
  form.addEventListener("dragenter", function (event) {
    if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
      dragDepth += 1;
      form.classList.add("dropping");
    }
  });
  form.addEventListener("dragleave", function () {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) { form.classList.remove("dropping"); }
  });
  form.addEventListener("dragover", function (event) {
    if (form.classList.contains("dropping")) { event.preventDefault(); }
  });
  form.addEventListener("drop", function (event) {
    dragDepth = 0;
    form.classList.remove("dropping");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      event.preventDefault();
      event.stopPropagation();
      Array.prototype.forEach.call(event.dataTransfer.files, upload);
    }
  }, true);
  document.addEventListener("trix-file-accept", function (event) {
    event.preventDefault();
    if (event.file) { upload(event.file); }
  });

  // Address suggestions -----------------------------------------------------------

  function setupSuggestions(input) {
    var list = document.getElementById(input.getAttribute("aria-controls"));
    var active = -1;
    var timer = null;

    function close() {
      list.hidden = true;
      list.innerHTML = "";
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function current() {
      var value = input.value;
      var at = Math.max(value.lastIndexOf(","), value.lastIndexOf(";"));
      return { head: value.slice(0, at + 1), term: value.slice(at + 1).trim() };
    }

    function pick(option) {
      var parts = current();
      var name = option.dataset.name;
      var email = option.dataset.email;
      var address = name ? "\"" + name.replace(/(["\\])/g, "\\$1") + "\" <" + email + ">" : email;
      input.value = (parts.head ? parts.head.trim() + " " : "") + address + ", ";
      close();
      input.focus();
      markDirty();
    }

    function highlight(index) {
      var options = list.querySelectorAll("li");
      if (!options.length) { return; }
      active = (index + options.length) % options.length;
      options.forEach(function (option, i) { option.setAttribute("aria-selected", i === active ? "true" : "false"); });
      input.setAttribute("aria-activedescendant", options[active].id);
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      var term = current().term;
      if (term.length < 1) { close(); return; }
      timer = window.setTimeout(function () {
        fetch(form.dataset.contactsUrl + "?q=" + encodeURIComponent(term), {
          headers: { "Accept": "application/json" }, credentials: "same-origin"
        }).then(function (response) { return response.json(); }).then(function (answer) {
          if (current().term !== term) { return; }
          list.innerHTML = "";
          answer.contacts.forEach(function (contact, i) {
            var option = document.createElement("li");
            option.id = list.id + "-" + i;
            option.setAttribute("role", "option");
            option.dataset.name = contact.name;
            option.dataset.email = contact.email;
            option.textContent = contact.name ? contact.name + " <" + contact.email + ">" : contact.email;
            list.appendChild(option);
          });
          list.hidden = !answer.contacts.length;
          input.setAttribute("aria-expanded", answer.contacts.length ? "true" : "false");
          active = -1;
        });
      }, 150);
    });
    input.addEventListener("keydown", function (event) {
      if (list.hidden) { return; }
      if (event.key === "ArrowDown") { event.preventDefault(); highlight(active + 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
      else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
        event.preventDefault();
        pick(list.querySelectorAll("li")[active]);
      } else if (event.key === "Escape") { close(); }
    });
    list.addEventListener("mousedown", function (event) {
      var option = event.target.closest("li");
      if (option) { event.preventDefault(); pick(option); }
    });
    input.addEventListener("blur", function () { window.setTimeout(close, 100); });
  }

  form.querySelectorAll("input[role=combobox]").forEach(setupSuggestions);
})();
