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

// Hits on the scan: "Kết quả trước/tiếp" within the page move the current box without reloading the page (the
// links go to the server otherwise: on to another page, or without JavaScript).
(function () {
  "use strict";
  var nav = document.getElementById("hit-nav");
  if (!nav || !window.history || !window.history.replaceState) { return; }
  var boxes = document.querySelectorAll("rect.hit-box");
  var prev = document.getElementById("hit-prev");
  var next = document.getElementById("hit-next");
  var pos = document.getElementById("hit-pos");
  var page = nav.getAttribute("data-page");
  var before = parseInt(nav.getAttribute("data-before"), 10) || 0;
  function hitUrl(k) {
    var url = new URL(window.location.href);
    url.searchParams.set("page", page);
    url.searchParams.set("hit", String(k));
    url.hash = "hit-" + k;
    return url.toString();
  }
  function setLink(link, href) {
    if (href) {
      link.setAttribute("href", href);
      link.classList.remove("disabled");
      link.removeAttribute("aria-disabled");
    } else {
      link.removeAttribute("href");
      link.classList.add("disabled");
      link.setAttribute("aria-disabled", "true");
    }
  }
  function show(k) {
    boxes.forEach(function (box, i) { box.classList.toggle("current", i === k - 1); });
    pos.textContent = nav.getAttribute("data-label") + " " + (before + k) + "/" + nav.getAttribute("data-total");
    setLink(prev, k > 1 ? hitUrl(k - 1) : nav.getAttribute("data-prev-page"));
    setLink(next, k < boxes.length ? hitUrl(k + 1) : nav.getAttribute("data-next-page"));
    window.history.replaceState(null, "", hitUrl(k));
    boxes[k - 1].scrollIntoView({block: "center", inline: "nearest"});
  }
  nav.addEventListener("click", function (event) {
    var link = event.target.closest("a[href]");
    if (!link) { return; }
    var url = new URL(link.href, window.location.href);
    if (url.pathname !== window.location.pathname || url.searchParams.get("page") !== page) { return; }
    var k = parseInt(url.searchParams.get("hit"), 10);
    if (!(k >= 1 && k <= boxes.length)) { return; }
    event.preventDefault();
    show(k);
  });
})();
