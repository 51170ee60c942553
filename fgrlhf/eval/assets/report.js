(function () {
  var show = "all", onlyErrors = false;
  function apply() {
    document.querySelectorAll("section.cat").forEach(function (s) {
      s.hidden = show !== "all" && s.dataset.category !== show;
    });
    document.querySelectorAll("article.item").forEach(function (a) {
      a.hidden = onlyErrors && a.dataset.errors === "0";
    });
    document.querySelectorAll("button.show").forEach(function (b) {
      b.classList.toggle("active", b.dataset.show === show);
    });
  }
  document.querySelectorAll("button.show").forEach(function (b) {
    b.addEventListener("click", function () { show = b.dataset.show; apply(); });
  });
  var box = document.getElementById("only-errors");
  box.addEventListener("change", function () { onlyErrors = box.checked; apply(); });
  var tip = document.getElementById("tooltip"), current = null;
  function place(x, y) {
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(x + 12, window.innerWidth - w - 4)) + "px";
    tip.style.top = (y + 18 + h > window.innerHeight ? y - h - 10 : y + 18) + "px";
  }
  function open(seg, x, y) {
    if (current === seg) return;
    close();
    current = seg;
    seg.dataset.tip = seg.getAttribute("title");
    seg.removeAttribute("title");
    tip.textContent = seg.dataset.tip;
    tip.hidden = false;
    place(x, y);
  }
  function close() {
    if (!current) return;
    current.setAttribute("title", current.dataset.tip);
    delete current.dataset.tip;
    current = null;
    tip.hidden = true;
  }
  document.addEventListener("mouseover", function (e) {
    var seg = e.target.closest ? e.target.closest(".seg[data-index]") : null;
    if (seg) open(seg, e.clientX, e.clientY); else close();
  });
  document.addEventListener("mousemove", function (e) { if (current) place(e.clientX, e.clientY); });
  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches(".seg[data-index]")) {
      var r = e.target.getBoundingClientRect();
      open(e.target, r.left, r.bottom - 12);
    }
  });
  document.addEventListener("focusout", close);
  window.addEventListener("scroll", close, true);
  var want = decodeURIComponent(location.hash.slice(1));
  if (document.querySelector('button.show[data-show="' + (window.CSS ? CSS.escape(want) : want) + '"]')) show = want;
  apply();
  document.documentElement.dataset.reportReady = "true";
})();
