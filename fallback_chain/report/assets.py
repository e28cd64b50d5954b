'''The page's inline stylesheet and script (kept in Python so the wheel needs no data files).
The script only reads the page: it filters, moves the keyboard focus and, on the review page,
posts the ticked ids to the loopback server that served it.'''

CSS = """
:root { --fg:#1d232b; --muted:#67717d; --line:#d9dee4; --bg:#f6f7f9; --accent:#2f6fdf; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 16px 20px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 0 0 8px; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.muted { color: var(--muted); }
.summary { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; }
.summary div { background: #fff; border: 1px solid var(--line); border-radius: 6px;
               padding: 4px 10px; }
.summary dt { font-size: 11px; color: var(--muted); text-transform: uppercase; }
.summary dd { margin: 0; font-weight: 600; }
#filters { position: sticky; top: 0; background: var(--bg); padding: 8px 0; z-index: 2;
           border-bottom: 1px solid var(--line); }
.filter-group { display: inline-flex; flex-wrap: wrap; align-items: center; gap: 4px;
                margin: 2px 14px 2px 0; }
.filter-group > span { color: var(--muted); margin-right: 2px; }
.chip { border: 1px solid var(--line); background: #fff; border-radius: 12px; padding: 2px 10px;
        cursor: pointer; font: inherit; }
.chip.active { background: var(--accent); color: #fff; border-color: var(--accent); }
.review-bar { display: flex; gap: 12px; align-items: center; margin-top: 6px; }
.review-bar button { font: inherit; padding: 4px 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
         font-size: 12px; }
.chart-title { font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
        gap: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px;
        outline: none; }
.card:focus { box-shadow: 0 0 0 3px var(--accent); }
.card.picked { border-color: #2a9d68; box-shadow: 0 0 0 2px #2a9d68; }
.card:focus.picked { box-shadow: 0 0 0 3px var(--accent), 0 0 0 6px #2a9d68; }
.thumbs { display: flex; gap: 4px; justify-content: center; background: #eef0f3;
          border-radius: 4px; min-height: 120px; align-items: center; }
.thumbs img { max-width: 100%; max-height: 240px; display: block; }
.meta { margin-top: 6px; }
.prov { color: var(--muted); }
.prompt { margin: 6px 0; white-space: pre-wrap; word-break: break-word; }
details summary { cursor: pointer; color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left;
         vertical-align: top; }
.attempts { font-size: 12px; margin-top: 4px; }
.attempt.success td:nth-child(3) { color: #2a9d68; }
.attempt.content_policy td:nth-child(3) { color: #c0392b; font-weight: 600; }
.failure .reason { color: #a02c1e; }
.hidden { display: none !important; }
"""

JS = r"""
(function () {
  "use strict";
  var active = {};
  var items = Array.prototype.slice.call(document.querySelectorAll(".item"));
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  function apply() {
    var shown = 0;
    items.forEach(function (el) {
      var ok = Object.keys(active).every(function (k) {
        return el.getAttribute("data-" + k) === active[k];
      });
      el.classList.toggle("hidden", !ok);
      if (ok && el.classList.contains("card")) { shown += 1; }
    });
    var count = document.getElementById("shown-count");
    if (count) { count.textContent = "(" + shown + " of " + cards.length + ")"; }
  }
  document.querySelectorAll(".chip").forEach(function (chip) {
    chip.addEventListener("click", function () {
      var k = chip.getAttribute("data-filter"), v = chip.getAttribute("data-value");
      if (active[k] === v) { delete active[k]; } else { active[k] = v; }
      document.querySelectorAll('.chip[data-filter="' + k + '"]').forEach(function (c) {
        c.classList.toggle("active", active[k] === c.getAttribute("data-value"));
      });
      apply();
    });
  });
  apply();

  function visibleCards() {
    return cards.filter(function (c) { return !c.classList.contains("hidden"); });
  }
  function columns() {
    var vis = visibleCards();
    if (vis.length < 2) { return 1; }
    var top = vis[0].offsetTop, n = 0;
    vis.forEach(function (c) { if (c.offsetTop === top) { n += 1; } });
    return Math.max(n, 1);
  }
  function move(delta) {
    var vis = visibleCards();
    if (!vis.length) { return; }
    var i = vis.indexOf(document.activeElement);
    var j = i < 0 ? 0 : Math.min(vis.length - 1, Math.max(0, i + delta));
    vis[j].focus();
    vis[j].scrollIntoView({block: "nearest"});
  }
  var review = document.body.classList.contains("review");
  function updateCount() {
    var n = cards.filter(function (c) { return c.classList.contains("picked"); }).length;
    var el = document.getElementById("selected-count");
    if (el) { el.textContent = n + " selected"; }
  }
  function setPicked(card, on) {
    card.classList.toggle("picked", on);
    var box = card.querySelector(".pick");
    if (box) { box.checked = on; }
    updateCount();
  }
  cards.forEach(function (card) {
    var box = card.querySelector(".pick");
    if (box) {
      box.addEventListener("change", function () { setPicked(card, box.checked); });
    }
  });
  function save() {
    var ids = cards.filter(function (c) { return c.classList.contains("picked"); })
      .map(function (c) { return c.getAttribute("data-id"); });
    var status = document.getElementById("save-status");
    status.textContent = "saving...";
    fetch("selection", {method: "POST", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({ids: ids})})
      .then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
      .then(function (res) {
        status.textContent = res[0] ? "saved " + res[1].count + " to " + res[1].path
                                    : "not saved: " + res[1].error;
        status.setAttribute("data-state", res[0] ? "saved" : "error");
      })
      .catch(function (e) { status.textContent = "not saved: " + e;
                            status.setAttribute("data-state", "error"); });
  }
  var saveButton = document.getElementById("save");
  if (saveButton) { saveButton.addEventListener("click", save); }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" && e.key !== " " || tag === "BUTTON" || tag === "SUMMARY") { return; }
    var card = document.activeElement && document.activeElement.classList &&
               document.activeElement.classList.contains("card") ? document.activeElement : null;
    if (e.key === "ArrowRight") { move(1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { move(-1); e.preventDefault(); }
    else if (e.key === "ArrowDown") { move(columns()); e.preventDefault(); }
    else if (e.key === "ArrowUp") { move(-columns()); e.preventDefault(); }
    else if (e.key === " " && card && review) {
      setPicked(card, !card.classList.contains("picked")); e.preventDefault();
    } else if (e.key === "Enter" && card) {
      var d = card.querySelector("details"); if (d) { d.open = !d.open; } e.preventDefault();
    } else if ((e.key === "s" || e.key === "S") && review && !e.ctrlKey && !e.metaKey) {
      save(); e.preventDefault();
    }
  });
  if (review) {
    cards.forEach(function (c) {
      if (c.getAttribute("data-picked") === "1") { setPicked(c, true); }
    });
    updateCount();
  }
})();
"""
