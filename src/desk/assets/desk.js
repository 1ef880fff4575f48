// The desk's script, served from the binary (no external code). Everything works without
// it except the live notice of new documents and the upload progress; it only adds those.
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // New documents appear without reloading: poll the desk (which polls the server).
  var count = document.getElementById("inbox-count");
  var notice = document.getElementById("new-notice");
  if (notice && count) {
    var latest = count.getAttribute("data-latest");
    var text = document.getElementById("new-notice-text");
    var check = function () {
      fetch("/inbox/poll" + (latest ? "?after=" + latest : ""), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (body && body.new > 0) {
            text.textContent = text.getAttribute("data-template").replace(/\d+|\{ ?\$count ?\}/, String(body.new));
            notice.hidden = false;
          }
        })
        .catch(function () {});
    };
    window.setInterval(check, 3000);
  }

  // "All children" checks the children of a unit in the tree, for the eye; the desk
  // itself expands to_children from the signed directory when it sends.
  document.querySelectorAll("input.all-children").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll('input[name="to"][data-parent="' + box.value + '"]').forEach(function (child) {
        if (!child.disabled) { child.checked = box.checked; }
      });
    });
  });

  var form = document.getElementById("compose");
  if (!form) { return; }
  var input = document.getElementById("files");
  var drop = document.getElementById("drop");
  var list = document.getElementById("file-list");
  var showFiles = function () {
    list.textContent = "";
    Array.prototype.forEach.call(input.files, function (f) {
      var li = document.createElement("li");
      li.textContent = f.name + " (" + f.size + " B)";
      list.appendChild(li);
    });
  };
  input.addEventListener("change", showFiles);
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    drop.classList.remove("over");
    input.files = e.dataTransfer.files;
    showFiles();
  });

  // The preview shows what will be signed, as the clerk typed it.
  var preview = document.getElementById("preview");
  var render = function () {
    var v = function (id) { var el = document.getElementById(id); return el ? el.value : ""; };
    var to = Array.prototype.map.call(form.querySelectorAll('input[name="to"]:checked, input[name="to_children"]:checked'), function (b) {
      return (b.name === "to_children" ? "* " : "") + b.value;
    });
    preview.textContent = v("doc_type") + " " + v("number") + "/" + v("notation") + "\n" +
      v("place") + ", " + v("date") + "\n" + v("subject") + "\n" +
      v("competence") + " " + v("position") + ": " + v("full_name") + "\n→ " + to.join(", ");
  };
  form.addEventListener("input", render);
  form.addEventListener("change", render);
  render();

  // Upload with progress; the server's answer (a redirect to the receipt) is followed.
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var progress = document.getElementById("progress");
    var error = document.getElementById("compose-error");
    var button = document.getElementById("send");
    button.disabled = true;
    error.hidden = true;
    progress.hidden = false;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("x-csrf-token", csrf);
    xhr.upload.addEventListener("progress", function (p) {
      if (p.lengthComputable) { progress.value = Math.round(100 * p.loaded / p.total); }
    });
    xhr.addEventListener("load", function () {
      if (xhr.status >= 200 && xhr.status < 300 && xhr.responseURL.indexOf("/sent/") >= 0) {
        window.location.assign(xhr.responseURL);
        return;
      }
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var message = doc.querySelector(".error");
      error.textContent = message ? message.textContent : String(xhr.status);
      error.hidden = false;
      button.disabled = false;
    });
    xhr.addEventListener("error", function () { error.textContent = "network"; error.hidden = false; button.disabled = false; });
    xhr.send(new FormData(form));
  });
})();
