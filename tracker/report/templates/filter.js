(function () {
  "use strict";
  var ps = document.getElementById("f-ps");
  var series = document.getElementById("f-series");
  var boxes = Array.prototype.slice.call(document.querySelectorAll(".f-st"));
  var count = document.getElementById("f-count");
  var nseries = series ? series.options.length - 1 : 0;
  var sheet = document.createElement("style");
  document.head.appendChild(sheet);
  function apply() {
    var wantPs = ps.value;
    var wantSeries = series.value;
    var off = {};
    var rules = [];
    boxes.forEach(function (b) {
      if (!b.checked) {
        off[b.value] = true;
        rules.push(".mx td." + b.value);
      }
    });
    var css = rules.length ? rules.join(",") + "{visibility:hidden}" : "";
    if (wantSeries !== "") {
      var hide = [];
      for (var i = 0; i < nseries; i++) {
        if (String(i) !== wantSeries) { hide.push(".mx .s" + i); }
      }
      if (hide.length) { css += hide.join(",") + "{display:none}"; }
    }
    sheet.textContent = css;
    var shown = 0;
    document.querySelectorAll(".mx tbody tr").forEach(function (tr) {
      var ok = wantPs === "" || tr.getAttribute("data-ps") === wantPs;
      if (ok) {
        ok = false;
        var tds = tr.children;
        for (var j = 1; j < tds.length; j++) {
          var cl = tds[j].classList;
          if (cl.contains("n")) { continue; }
          if (wantSeries !== "" && !cl.contains("s" + wantSeries)) { continue; }
          if (off[cl[0]]) { continue; }
          ok = true;
          break;
        }
      }
      tr.hidden = !ok;
      if (ok) { shown++; }
    });
    if (count) { count.textContent = shown + " rows shown"; }
  }
  [ps, series].forEach(function (el) { el.addEventListener("change", apply); });
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  apply();
})();
