/* weightinit explorer: small SVG plotting helpers (no dependencies).
 *
 * WIPlots.lineChart(el, opts): one line per series across layers, log or linear y axis.
 *   Every marker carries data-series, data-layer and data-value (the number exactly as the API
 *   sent it: String() of the parsed JSON number, which round-trips) and a <title> tooltip.
 * WIPlots.histogram(el, opts): bars from fixed edges/counts, an optional density curve scaled to
 *   the counts, optional bounds (dashed) and a spike for constant distributions.
 * WIPlots.pdf(distribution, parameters): the density function of a reported distribution, or null.
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function svgEl(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  function text(parent, x, y, str, attrs) {
    var t = svgEl("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = str;
    return t;
  }

  var SUP = { "-": "\u207b", "0": "\u2070", "1": "\u00b9", "2": "\u00b2", "3": "\u00b3", "4": "\u2074",
              "5": "\u2075", "6": "\u2076", "7": "\u2077", "8": "\u2078", "9": "\u2079" };

  function pow10Label(k) {
    if (k === 0) return "1";
    if (k === 1) return "10";
    return "10" + String(k).split("").map(function (c) { return SUP[c]; }).join("");
  }

  function fmt(v) {
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) return v.toExponential(1).replace("e+", "e");
    return String(Number(v.toPrecision(3)));
  }

  function niceLinearTicks(lo, hi, n) {
    var span = hi - lo;
    if (!(span > 0)) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  /* opts: {xLabels: [...], series: [{label, color, dash, values: [num|null]}], log: bool,
   *        yLabel: str, ariaLabel: str} */
  function lineChart(el, opts) {
    el.textContent = "";
    var W = 640, H = 300, m = { l: 62, r: 40, t: 14, b: 58 };
    var pw = W - m.l - m.r, ph = H - m.t - m.b;
    var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.ariaLabel || "",
                             class: "chart" }, el);
    var n = opts.xLabels.length;
    var vals = [];
    opts.series.forEach(function (s) {
      s.values.forEach(function (v) { if (typeof v === "number" && isFinite(v) && (!opts.log || v > 0)) vals.push(v); });
    });
    var log = !!opts.log;
    var lo, hi;
    if (!vals.length) { lo = log ? 0.1 : 0; hi = log ? 10 : 1; }
    else {
      lo = Math.min.apply(null, vals); hi = Math.max.apply(null, vals);
    }
    var ticks;
    if (log) {
      var klo = Math.floor(Math.log10(lo)), khi = Math.ceil(Math.log10(hi));
      if (khi - klo < 1) { khi = klo + 1; }
      lo = Math.pow(10, klo); hi = Math.pow(10, khi);
      var stepK = Math.max(1, Math.ceil((khi - klo) / 8));
      ticks = [];
      for (var k = klo; k <= khi; k += stepK) ticks.push(k);
      var yOf = function (v) { return m.t + ph - (Math.log10(v) - klo) / (khi - klo) * ph; };
    } else {
      if (lo === hi) { lo -= 1; hi += 1; }
      var pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
      ticks = niceLinearTicks(lo, hi, 6);
      yOf = function (v) { return m.t + ph - (v - lo) / (hi - lo) * ph; };
    }
    var xOf = function (i) { return m.l + (n <= 1 ? pw / 2 : i / (n - 1) * pw); };
    var floorY = m.t + ph;

    var grid = svgEl("g", { class: "grid" }, svg);
    ticks.forEach(function (t) {
      var y = log ? yOf(Math.pow(10, t)) : yOf(t);
      svgEl("line", { x1: m.l, x2: m.l + pw, y1: y, y2: y }, grid);
      text(grid, m.l - 6, y + 4, log ? pow10Label(t) : fmt(t), { "text-anchor": "end", class: "tick" });
    });
    var every = Math.max(1, Math.ceil(n / 12));
    for (var i = 0; i < n; i++) {
      if (i % every !== 0 && i !== n - 1) continue;
      var x = xOf(i);
      svgEl("line", { x1: x, x2: x, y1: floorY, y2: floorY + 4, class: "axis" }, svg);
      text(svg, x, floorY + 8, opts.xLabels[i], { class: "tick xl", transform: "rotate(35 " + x + " " + (floorY + 8) + ")" });
    }
    svgEl("rect", { x: m.l, y: m.t, width: pw, height: ph, class: "frame" }, svg);
    text(svg, 14, m.t + ph / 2, opts.yLabel || "", { class: "ylabel", transform: "rotate(-90 14 " + (m.t + ph / 2) + ")",
                                                      "text-anchor": "middle" });
    text(svg, m.l + pw / 2, H - 4, "layer (input \u2192 output)", { class: "xlabel", "text-anchor": "middle" });

    opts.series.forEach(function (s, si) {
      var g = svgEl("g", { class: "series", "data-series": si, "data-label": s.label }, svg);
      var d = "", pen = false;
      s.values.forEach(function (v, i) {
        var ok = typeof v === "number" && isFinite(v) && (!log || v > 0);
        if (!ok) { pen = false; return; }
        d += (pen ? "L" : "M") + xOf(i).toFixed(2) + " " + yOf(v).toFixed(2);
        pen = true;
      });
      if (d) svgEl("path", { d: d, stroke: s.color, "stroke-dasharray": s.dash || "none", class: "line" }, g);
      s.values.forEach(function (v, i) {
        if (typeof v !== "number") return;
        var ok = isFinite(v) && (!log || v > 0);
        var attrs = { "data-series": si, "data-layer": opts.xLabels[i], "data-value": String(v) };
        var mk;
        if (ok) {
          mk = svgEl("circle", Object.assign({ cx: xOf(i).toFixed(2), cy: yOf(v).toFixed(2), r: 3.2, fill: s.color,
                                               class: "pt" }, attrs), g);
        } else {  /* zero (or negative) on a log axis: an x on the floor */
          var cx = xOf(i), cy = floorY - 4;
          mk = svgEl("path", Object.assign({ d: "M" + (cx - 4) + " " + (cy - 4) + "L" + (cx + 4) + " " + (cy + 4) +
                                             "M" + (cx - 4) + " " + (cy + 4) + "L" + (cx + 4) + " " + (cy - 4),
                                             stroke: s.color, class: "pt zero" }, attrs), g);
        }
        var tt = svgEl("title", null, mk);
        tt.textContent = s.label + " \u2014 " + opts.xLabels[i] + ": " + fmt(v) + (ok ? "" : " (not > 0: shown on the floor)");
      });
    });
    return svg;
  }

  /* Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7). */
  function ndtr(x) {
    var z = Math.abs(x) / Math.SQRT2, t = 1 / (1 + 0.3275911 * z);
    var y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
    return x >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
  }

  function normalPdf(x, mu, s) {
    var u = (x - mu) / s;
    return Math.exp(-0.5 * u * u) / (s * Math.sqrt(2 * Math.PI));
  }

  function pdf(dist, p) {
    if (dist === "uniform") {
      var w = p.high - p.low;
      return function (x) { return x >= p.low && x <= p.high ? 1 / w : 0; };
    }
    if (dist === "normal") return function (x) { return normalPdf(x, p.mean, p.std); };
    if (dist === "truncated_normal") {
      var mass = ndtr((p.high - p.mean) / p.std) - ndtr((p.low - p.mean) / p.std);
      return function (x) { return x >= p.low && x <= p.high ? normalPdf(x, p.mean, p.std) / mass : 0; };
    }
    return null;
  }

  /* opts: {edges, counts, color, density: fn|null, bounds: [lo, hi]|null, spike: number|null,
   *        title, ariaLabel} */
  function histogram(el, opts) {
    el.textContent = "";
    var W = 260, H = 150, m = { l: 8, r: 8, t: 20, b: 24 };
    var pw = W - m.l - m.r, ph = H - m.t - m.b;
    var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.ariaLabel || "",
                             class: "hist" }, el);
    text(svg, m.l, 13, opts.title || "", { class: "htitle" });
    if (!opts.edges || !opts.counts) {
      text(svg, W / 2, H / 2, "no data", { "text-anchor": "middle", class: "tick" });
      return svg;
    }
    var e = opts.edges, c = opts.counts, nb = c.length;
    var lo = e[0], hi = e[nb];
    var total = c.reduce(function (a, b) { return a + b; }, 0);
    var bw = (hi - lo) / nb;
    var dens = [];
    if (opts.density) {
      for (var k = 0; k <= 160; k++) {
        var x = lo + (hi - lo) * k / 160;
        dens.push([x, opts.density(x) * total * bw]);
      }
    }
    var ymax = Math.max.apply(null, c.concat(dens.map(function (d) { return d[1]; })).concat([1]));
    var xOf = function (x) { return m.l + (x - lo) / (hi - lo) * pw; };
    var yOf = function (y) { return m.t + ph - y / ymax * ph; };
    var bars = svgEl("g", { class: "bars", fill: opts.color }, svg);
    for (var i = 0; i < nb; i++) {
      if (!c[i]) continue;
      svgEl("rect", { x: xOf(e[i]).toFixed(2), y: yOf(c[i]).toFixed(2), width: Math.max(0.6, xOf(e[i + 1]) - xOf(e[i]) - 0.4).toFixed(2),
                      height: (m.t + ph - yOf(c[i])).toFixed(2), "data-count": c[i] }, bars);
    }
    if (dens.length) {
      var d = dens.map(function (p, j) { return (j ? "L" : "M") + xOf(p[0]).toFixed(2) + " " + yOf(Math.min(p[1], ymax * 1.05)).toFixed(2); }).join("");
      svgEl("path", { d: d, class: "density" }, svg);
    }
    if (typeof opts.spike === "number" && opts.spike >= lo && opts.spike <= hi) {
      svgEl("line", { x1: xOf(opts.spike), x2: xOf(opts.spike), y1: m.t, y2: m.t + ph, class: "density" }, svg);
    }
    if (opts.bounds) {
      opts.bounds.forEach(function (b) {
        if (b >= lo && b <= hi) svgEl("line", { x1: xOf(b), x2: xOf(b), y1: m.t, y2: m.t + ph, class: "bound" }, svg);
      });
    }
    svgEl("line", { x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph, class: "axis" }, svg);
    text(svg, m.l, H - 6, fmt(lo), { class: "tick" });
    text(svg, m.l + pw, H - 6, fmt(hi), { class: "tick", "text-anchor": "end" });
    if (lo < 0 && hi > 0) {
      svgEl("line", { x1: xOf(0), x2: xOf(0), y1: m.t + ph, y2: m.t + ph + 4, class: "axis" }, svg);
      text(svg, xOf(0), H - 6, "0", { class: "tick", "text-anchor": "middle" });
    }
    return svg;
  }

  window.WIPlots = { lineChart: lineChart, histogram: histogram, pdf: pdf, fmt: fmt };
})();
