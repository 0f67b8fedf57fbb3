// Keyboard-only review (review_edit.html; the keys are listed on the page, _review_keys.html).
// j / k: next / previous field (the metadata fields, then the doubtful lines); Enter in a field: accept it and go
// to the next one (in a doubtful line that was changed: save that line); Esc: leave the field; a or Ctrl+Enter:
// accept the document (save, mark reviewed, next document); n: next document without saving.
// Without this script the form works as before (Tab, the buttons and the links).
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  var next = document.getElementById("next-doc");
  function plain(e) { return !(e.altKey || e.ctrlKey || e.metaKey) && !/^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName); }
  if (!form) {  // the review queue: n opens its first document
    document.addEventListener("keydown", function (e) {
      if (next && e.key === "n" && plain(e)) { e.preventDefault(); window.location.assign(next.href); }
    });
    return;
  }
  var fields = Array.prototype.slice.call(document.querySelectorAll(".kf"));

  function rowOf(el) { return el.closest(".field, .doubtful li"); }

  function focusField(i) {
    if (!fields.length) { return; }
    var el = fields[Math.max(0, Math.min(fields.length - 1, i))];
    el.focus();
    if (el.select && el.tagName === "INPUT") { el.select(); }
    var row = rowOf(el);
    if (row) { row.scrollIntoView({block: "center"}); }
  }

  function step(by) {
    var i = fields.indexOf(document.activeElement);
    focusField(i < 0 ? (by > 0 ? 0 : fields.length - 1) : i + by);
  }

  function accept() {
    var done = form.querySelector("input[name=reviewed]");
    if (done) { done.checked = true; }
    document.getElementById("review-then").value = "next";
    form.submit();
  }

  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }

  document.addEventListener("focusin", function (e) {
    var current = document.querySelectorAll(".current");
    for (var c = 0; c < current.length; c++) { current[c].classList.remove("current"); }
    var row = fields.indexOf(e.target) >= 0 ? rowOf(e.target) : null;
    if (row) { row.classList.add("current"); }
  });

  document.addEventListener("keydown", function (e) {
    var el = document.activeElement;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); accept(); return; }
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    if (fields.indexOf(el) >= 0) {
      if (e.key === "Escape") { e.preventDefault(); el.blur(); return; }
      if (e.key === "Enter" && el.tagName !== "TEXTAREA") {
        var line = el.classList.contains("line-text");
        if (line && el.value !== el.getAttribute("data-original")) { return; }  // the browser submits the line
        e.preventDefault();
        step(1);
      }
      return;
    }
    if (typing(el)) { return; }
    if (e.key === "j") { e.preventDefault(); step(1); }
    else if (e.key === "k") { e.preventDefault(); step(-1); }
    else if (e.key === "a") { e.preventDefault(); accept(); }
    else if (e.key === "n") { e.preventDefault(); window.location.assign(next.href); }
  });
})();
