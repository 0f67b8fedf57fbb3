// Page image zoom on the document page (the page works without it: the image then fits the frame).
// The zoom scales the page canvas (the image and the hit boxes over it, placed in percent), so they stay aligned.
(function () {
  "use strict";
  var img = document.getElementById("page-image");
  var canvas = document.getElementById("page-canvas") || img;
  var zoom = document.querySelector(".zoom");
  if (!img || !zoom) { return; }
  var scale = 1;
  function apply() {
    canvas.style.width = Math.round(scale * 100) + "%";
    canvas.style.maxWidth = "none";
    img.dataset.scale = String(scale);
  }
  zoom.hidden = false;
  zoom.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    var action = button.getAttribute("data-zoom");
    if (action === "in") { scale = Math.min(4, scale * 1.25); }
    else if (action === "out") { scale = Math.max(0.25, scale / 1.25); }
    else { scale = 1; }
    apply();
    var current = document.querySelector(".hit-box.current");
    if (current && current.scrollIntoView) { current.scrollIntoView({block: "center", inline: "center"}); }
  });
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA") { return; }
    var link = null;
    if (event.key === "ArrowLeft") { link = document.querySelector("a[rel=prev]"); }
    if (event.key === "ArrowRight") { link = document.querySelector("a[rel=next]"); }
    if (link) { window.location.href = link.href; }
  });
})();
