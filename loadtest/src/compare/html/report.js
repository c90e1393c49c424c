// report.html's behaviour. Without it the page shows every table and chart as written.
(function () {
  "use strict";
  var all = function (selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  };
  var hidden = new Set();
  // Layers of the stacked bars (kinds of syscall), hidden alike on every stacked chart.
  var hiddenKinds = new Set();

  // Series: one set of hidden names, applied to every chart at once.
  function apply() {
    all("svg.chart [data-series]").forEach(function (el) {
      var off = hidden.has(el.dataset.series);
      el.classList.toggle("off", off);
      if (el.classList.contains("legend-entry")) {
        el.setAttribute("aria-pressed", String(!off));
      }
    });
    all("svg.chart [data-kind]").forEach(function (el) {
      var off = hiddenKinds.has(el.dataset.kind);
      el.classList.toggle("off", off);
      if (el.classList.contains("legend-entry")) {
        el.setAttribute("aria-pressed", String(!off));
      }
    });
    all("svg.chart g.stack").forEach(restack);
    all(".toolbar button[data-family]").forEach(function (button) {
      var members = familyMembers(button.dataset.family);
      var shown = members.length === 0 || members.some(function (name) { return !hidden.has(name); });
      button.setAttribute("aria-pressed", String(shown));
    });
  }
  function familyMembers(family) {
    var names = new Set();
    all("svg.chart .legend-entry").forEach(function (el) {
      if (el.dataset.family === family) { names.add(el.dataset.series); }
    });
    return Array.from(names);
  }
  // A stacked bar closes up over its hidden segments (heights as drawn, from the axis up) and
  // its label says what the shown ones add up to, as loadtest words a bar's value.
  function restack(stack) {
    var top = Number(stack.dataset.bottom), shown = 0, anyOff = false;
    all(".segment", stack).forEach(function (segment) {
      if (segment.classList.contains("off")) { anyOff = true; return; }
      top -= Number(segment.getAttribute("height"));
      segment.setAttribute("y", top.toFixed(1));
      shown += Number(segment.dataset.v);
    });
    var total = stack.querySelector(".stack-total");
    if (!total) { return; }
    total.setAttribute("y", (top - 6).toFixed(1));
    var words = shown >= 10 ? shown.toFixed(0) : shown.toFixed(1);
    total.textContent = anyOff ? words : total.dataset.label;
  }
  function toggleSeries(name) {
    if (hidden.has(name)) { hidden.delete(name); } else { hidden.add(name); }
    apply();
  }
  function toggleKind(kind) {
    if (hiddenKinds.has(kind)) { hiddenKinds.delete(kind); } else { hiddenKinds.add(kind); }
    apply();
  }
  // A legend entry names a series (a target, on every chart) or a layer of stacked bars.
  function toggleEntry(entry) {
    if (entry.dataset.kind !== undefined) {
      toggleKind(entry.dataset.kind);
    } else {
      toggleSeries(entry.dataset.series);
    }
  }
  function toggleFamily(family) {
    var members = familyMembers(family);
    var anyShown = members.some(function (name) { return !hidden.has(name); });
    members.forEach(function (name) {
      if (anyShown) { hidden.add(name); } else { hidden.delete(name); }
    });
    apply();
  }

  // Tables: numbers by their data-v (units folded in), text otherwise; cells without a value
  // last either way; baseline rows stay on top in their first order.
  function sortBy(th) {
    var table = th.closest("table");
    var column = th.cellIndex;
    var direction = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    all("th", table).forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var value = function (row) {
      var cell = row.cells[column];
      return cell && cell.dataset.v !== undefined ? Number(cell.dataset.v) : null;
    };
    var text = function (row) {
      var cell = row.cells[column];
      return cell ? cell.textContent.trim() : "";
    };
    var numeric = rows.some(function (row) { return value(row) !== null; });
    rows.sort(function (a, b) {
      var pinA = a.classList.contains("baseline"), pinB = b.classList.contains("baseline");
      if (pinA || pinB) {
        return pinA && pinB ? a.dataset.order - b.dataset.order : (pinA ? -1 : 1);
      }
      if (numeric) {
        var va = value(a), vb = value(b);
        if (va === null || vb === null) { return (va === null) - (vb === null); }
        return sign * (va - vb) || a.dataset.order - b.dataset.order;
      }
      return sign * text(a).localeCompare(text(b), undefined, { numeric: true });
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  // Tooltips: each point's <title> becomes its data-tip, shown beside the pointer.
  var tip = document.getElementById("tip");
  all("svg.chart .hit, svg.chart .bar, svg.chart .stack-total").forEach(function (el) {
    var title = el.querySelector("title");
    if (title) {
      el.dataset.tip = title.textContent;
      el.removeChild(title);
    }
  });
  // A stacked bar's label as written, shown again when no layer is hidden.
  all("svg.chart .stack-total").forEach(function (el) { el.dataset.label = el.textContent; });
  function showTip(event) {
    var el = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (!el) { tip.hidden = true; return; }
    tip.textContent = el.dataset.tip;
    tip.hidden = false;
    var x = event.clientX + 14, y = event.clientY + 14;
    var room = window.innerWidth - tip.offsetWidth - 8;
    tip.style.left = Math.max(4, Math.min(x, room)) + "px";
    tip.style.top = y + "px";
  }
  document.addEventListener("pointermove", showTip);
  document.addEventListener("pointerover", showTip);

  document.addEventListener("click", function (event) {
    var entry = event.target.closest("svg.chart .legend-entry");
    if (entry) { toggleEntry(entry); return; }
    var family = event.target.closest(".toolbar button[data-family]");
    if (family) { toggleFamily(family.dataset.family); return; }
    if (event.target.closest(".toolbar button[data-show-all]")) {
      hidden.clear();
      hiddenKinds.clear();
      apply();
      return;
    }
    var th = event.target.closest("table.sortable th");
    if (th) { sortBy(th); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" && event.key !== " ") { return; }
    var entry = event.target.closest && event.target.closest("svg.chart .legend-entry");
    var th = event.target.closest && event.target.closest("table.sortable th");
    if (entry) { toggleEntry(entry); } else if (th) { sortBy(th); } else { return; }
    event.preventDefault();
  });

  all("table.sortable").forEach(function (table) {
    table.classList.add("js");
    all("th", table).forEach(function (th) { th.tabIndex = 0; });
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row, i) { row.dataset.order = i; });
  });
  all(".toolbar").forEach(function (bar) { bar.hidden = false; });
  apply();
})();
