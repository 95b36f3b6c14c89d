/* weightinit explorer: build a POST /v1/diagnose request from the controls, draw the answer.
 * Plain JS, no dependencies; served from this origin under a strict Content-Security-Policy. */
(function () {
  "use strict";

  function dense(name, i, o, act) {
    return { type: "dense", name: name, in_features: i, out_features: o, activation: act };
  }
  function mlp(act, depth, width) {
    var layers = [];
    for (var i = 0; i < depth; i++) layers.push(dense("fc" + i, width, width, act));
    return { layers: layers };
  }
  /* GPT-2's pre-LN blocks: x += attn(ln_1(x)); x += mlp(ln_2(x)); then ln_f. Each branch [first, last] goes
   * into `residual`; its layers carry the roles the recipes read (attn_qkv, attn_out, mlp_in, mlp_out). */
  function transformer(blocks, width, tokens, heads) {
    var layers = [], residual = [];
    function add(layer) { layers.push(layer); return layers.length - 1; }
    function ln(name) { return add({ type: "layernorm", name: name, normalized_shape: width }); }
    function proj(name, i, o, role, act) {
      var l = dense(name, i, o, act || "linear");
      l.role = role;
      return add(l);
    }
    for (var b = 0; b < blocks; b++) {
      var p = "h" + b + ".";
      var first = ln(p + "ln_1");
      proj(p + "attn.c_attn", width, 3 * width, "attn_qkv");
      residual.push([first, proj(p + "attn.c_proj", width, width, "attn_out")]);
      first = ln(p + "ln_2");
      proj(p + "mlp.c_fc", width, 4 * width, "mlp_in", "gelu");
      residual.push([first, proj(p + "mlp.c_proj", 4 * width, width, "mlp_out")]);
    }
    ln("ln_f");
    return { layers: layers, residual: residual, tokens: tokens, heads: heads };
  }

  var PRESETS = {
    tanh: { label: "Deep tanh MLP (20 \u00d7 256)", arch: mlp("tanh", 20, 256), spatial: "",
            schemes: ["xavier_tanh", "small", "large"] },
    relu: { label: "Deep ReLU MLP (20 \u00d7 256)", arch: mlp("relu", 20, 256), spatial: "",
            schemes: ["he_normal", "xavier_normal"] },
    cnn: { label: "Small CNN (4 conv2d + 2 dense, 8\u00d78 input)", spatial: "8x8", schemes: ["he_normal", "torch_default"],
           arch: { layers: [
             { type: "conv2d", name: "conv1", in_channels: 3, out_channels: 16, kernel_size: 3, activation: "relu" },
             { type: "conv2d", name: "conv2", in_channels: 16, out_channels: 32, kernel_size: 3, activation: "relu" },
             { type: "conv2d", name: "conv3", in_channels: 32, out_channels: 32, kernel_size: 3, activation: "relu" },
             { type: "conv2d", name: "conv4", in_channels: 32, out_channels: 32, kernel_size: 3, activation: "relu" },
             dense("fc", 32 * 8 * 8, 128, "relu"),
             dense("head", 128, 10, "softmax")] } },
    stream: { label: "48-block pre-LN transformer (width 32): the residual stream", spatial: "", batch: 16,
              arch: transformer(48, 32, 8, 4), schemes: ["auto", "torch_default", "gpt2", "deepnorm", "fixup"],
              metrics: ["stream.ratio", "stream.gradient_ratio"],
              note: "Each pre-LN block adds its attention's and its MLP's output to the residual stream, and nothing " +
                    "scales the sum back. With the rule-of-thumb weights (auto) or PyTorch's defaults every branch adds " +
                    "about as much variance as the last, so the stream's RMS grows like the square root of the depth " +
                    "(verdict \u201cgrowing\u201d): late blocks barely move it. gpt2 draws each branch's output projection " +
                    "with std 0.02 / sqrt(2 \u00d7 48), DeepNorm scales by beta and Fixup starts it at zero, so the stream " +
                    "stays at the input's scale (\u201chealthy\u201d). Plot: the stream after each branch." },
    relu30: { label: "30-layer ReLU MLP (256 wide): Xavier loses the signal, He keeps it", spatial: "",
              arch: mlp("relu", 30, 256), schemes: ["xavier_normal", "he_normal"],
              note: "ReLU zeroes about half of its inputs, so each layer halves the signal's variance unless the " +
                    "weights double it. Xavier's variance 2 / (fan_in + fan_out) is 1 / n here, half of what ReLU needs: " +
                    "after 30 layers the signal is 2^-14.5, about 40,000 times weaker (\u201cvanishing\u201d). He's 2 / " +
                    "fan_in keeps it at the input's scale (\u201chealthy\u201d). LSUV (POST /v1/calibrate) gets there by " +
                    "measuring: it rescales each layer until its outputs have unit variance on a probe batch." },
    custom: { label: "Custom (edit the JSON below)", arch: null, spatial: null, schemes: null }
  };

  /* The comparison catalogue: id -> [label, scheme spec]. */
  var SCHEMES = [
    ["xavier_tanh", "Xavier normal, gain tanh (5/3)", { name: "xavier_normal", gain: "tanh" }],
    ["xavier_normal", "Xavier normal", "xavier_normal"],
    ["xavier_uniform", "Xavier uniform", "xavier_uniform"],
    ["he_normal", "He normal", "he_normal"],
    ["he_uniform", "He uniform", "he_uniform"],
    ["lecun_normal", "LeCun normal", "lecun_normal"],
    ["orthogonal", "Orthogonal", "orthogonal"],
    ["auto", "auto (rule of thumb per activation)", "auto"],
    ["torch_default", "PyTorch default U[\u00b11/\u221afan_in]", "torch_default"],
    ["small", "Small random N(0, 0.01\u00b2)", { name: "normal", std: 0.01 }],
    ["large", "Large random N(0, 1)", { name: "normal", std: 1.0 }],
    ["xavier_x15", "Xavier \u00d7 1.5", { name: "xavier_normal", gain: 1.5 }],
    ["zeros", "Zeros", "zeros"],
    ["constant", "Constant 0.05", { name: "constant", value: 0.05 }],
    ["gpt2", "gpt2 (N(0, 0.02\u00b2), residual outputs / \u221a(2 n_layer))", "gpt2"],
    ["deepnorm", "deepnorm (DeepNet's beta)", "deepnorm"],
    ["fixup", "fixup (residual branches' last layer at 0)", "fixup"]
  ];
  var MAX_SCHEMES = 8;
  /* Okabe-Ito colours (colour-blind safe) and dash patterns, so lines differ in two ways. */
  var COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C6D31"];
  var DASHES = ["none", "6 3", "2 3", "8 3 2 3", "none", "6 3", "2 3", "8 3 2 3"];
  var VERDICT_WORDS = {
    healthy: "healthy", vanishing: "vanishing", exploding: "exploding", saturated: "saturated", symmetric: "symmetric",
    growing: "growing"
  };

  var $ = function (id) { return document.getElementById(id); };
  var state = { request: null, response: null, labels: [], runs: 0 };

  function schemeLabel(spec) {
    var json = JSON.stringify(spec);
    for (var i = 0; i < SCHEMES.length; i++) {
      if (JSON.stringify(SCHEMES[i][2]) === json) return SCHEMES[i][1];
    }
    if (typeof spec === "string") return spec;
    var extra = Object.keys(spec).filter(function (k) { return k !== "name"; })
      .map(function (k) { return k + "=" + JSON.stringify(spec[k]); }).join(", ");
    return spec.name + (extra ? " (" + extra + ")" : "");
  }

  /* ------------------------------------------------------------------ controls */

  function initControls() {
    var preset = $("preset");
    Object.keys(PRESETS).forEach(function (k) {
      var o = document.createElement("option");
      o.value = k; o.textContent = PRESETS[k].label;
      preset.appendChild(o);
    });
    var list = $("scheme-list");
    SCHEMES.forEach(function (s) {
      var id = "scheme-" + s[0];
      var wrap = document.createElement("div");
      wrap.className = "check";
      var box = document.createElement("input");
      box.type = "checkbox"; box.id = id; box.value = s[0]; box.name = "scheme";
      var lab = document.createElement("label");
      lab.htmlFor = id; lab.textContent = s[1];
      wrap.appendChild(box); wrap.appendChild(lab);
      list.appendChild(wrap);
    });
    preset.addEventListener("change", function () { applyPreset(preset.value); });
    $("arch").addEventListener("input", function () { preset.value = "custom"; });
    $("controls").addEventListener("submit", function (ev) { ev.preventDefault(); run(); });
    $("fwd-metric").addEventListener("change", drawCurves);
    $("bwd-metric").addEventListener("change", drawCurves);
    $("hist-scheme").addEventListener("change", drawHistograms);
    $("hist-kind").addEventListener("change", drawHistograms);
    $("dl-scheme").addEventListener("change", updateWeightsCurl);
    $("dl-tensor").addEventListener("change", updateWeightsCurl);
    Array.prototype.forEach.call(document.querySelectorAll("button.dl"), function (b) {
      b.addEventListener("click", function () { download(b.getAttribute("data-format")); });
      b.addEventListener("focus", function () { updateWeightsCurl(b.getAttribute("data-format")); });
      b.addEventListener("mouseenter", function () { updateWeightsCurl(b.getAttribute("data-format")); });
    });
    $("dl-diagnosis").addEventListener("click", downloadDiagnosis);
    Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (b) {
      b.addEventListener("click", function () { copy(b.getAttribute("data-copy"), b); });
    });
    setDownloadsEnabled(false);
    applyPreset("tanh");
    hideUnknownSchemes();
  }

  /* Recipes come and go with the service's version: offer only the catalogue's schemes GET /v1/schemes lists. */
  function hideUnknownSchemes() {
    fetch("/v1/schemes", { headers: { "Accept": "application/json" } }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (body) {
      if (!body || !Array.isArray(body.names)) return;
      SCHEMES.forEach(function (s) {
        var name = typeof s[2] === "string" ? s[2] : s[2].name;
        if (body.names.indexOf(name) < 0) {
          var box = $("scheme-" + s[0]);
          box.checked = false;
          box.parentNode.hidden = true;
        }
      });
    }).catch(function () { /* the catalogue stays as it is */ });
  }

  function applyPreset(key) {
    var p = PRESETS[key];
    $("preset").value = key;
    $("preset-note").textContent = p.note || "";
    if (!p.arch) return;
    $("arch").value = prettyArch(p.arch);
    $("spatial").value = p.spatial;
    $("batch").value = String(p.batch || 128);
    Array.prototype.forEach.call(document.querySelectorAll("#scheme-list input"), function (b) {
      b.checked = p.schemes.indexOf(b.value) >= 0 && !b.parentNode.hidden;
    });
    var metrics = p.metrics || ["activation.std", "pre_activation_gradient_norm"];
    $("fwd-metric").value = metrics[0];
    $("bwd-metric").value = metrics[1];
  }

  /* The architecture's keys besides layers that go into the document as they are (residual networks). */
  var ARCH_EXTRAS = ["residual", "tokens", "heads"];

  function prettyArch(arch) {
    /* one layer per line, with spaces after ':' and ',' so that long lines wrap between fields */
    var text = "{\"layers\": [\n" + arch.layers.map(function (l) {
      return "  " + JSON.stringify(l).replace(/,"/g, ", \"").replace(/":/g, "\": ");
    }).join(",\n") + "\n]";
    ARCH_EXTRAS.forEach(function (k) {
      if (arch[k] !== undefined) text += ",\n\"" + k + "\": " + JSON.stringify(arch[k]).replace(/,/g, ", ");
    });
    return text + "}";
  }

  function fail(msg, fields) {
    var box = $("error");
    box.textContent = "";
    var p = document.createElement("p");
    p.textContent = msg;
    box.appendChild(p);
    if (fields) {
      var ul = document.createElement("ul");
      Object.keys(fields).forEach(function (f) {
        var li = document.createElement("li");
        li.textContent = f + ": " + fields[f].join("; ");
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    box.hidden = false;
    $("status").textContent = "";
  }

  function buildRequest() {
    var arch;
    try {
      arch = JSON.parse($("arch").value);
    } catch (e) {
      throw new Error("The layers are not valid JSON: " + e.message);
    }
    if (arch && arch.architecture) arch = arch.architecture;
    if (!arch || !Array.isArray(arch.layers)) throw new Error("The layers must be an object {\"layers\": [...]}.");
    var schemes = [];
    Array.prototype.forEach.call(document.querySelectorAll("#scheme-list input:checked"), function (b) {
      SCHEMES.forEach(function (s) { if (s[0] === b.value) schemes.push(s[2]); });
    });
    var custom = $("custom-scheme").value.trim();
    if (custom) {
      var spec;
      try { spec = custom.charAt(0) === "{" ? JSON.parse(custom) : custom; }
      catch (e) { throw new Error("The extra scheme is not valid JSON: " + e.message); }
      schemes.push(spec);
    }
    if (!schemes.length) throw new Error("Pick at least one scheme to compare.");
    if (schemes.length > MAX_SCHEMES) throw new Error("At most " + MAX_SCHEMES + " schemes can be compared at once.");
    var doc = { architecture: { layers: arch.layers }, schemes: schemes };
    ARCH_EXTRAS.forEach(function (k) { if (arch[k] !== undefined) doc[k] = arch[k]; });
    var seed = $("seed").value.trim();
    doc.seed = seed === "" ? 0 : Number(seed);
    doc.dtype = $("dtype").value;
    var batch = $("batch").value.trim();
    if (batch !== "") doc.batch = Number(batch);
    var first = arch.layers[0] || {};
    var sp = $("spatial").value.trim();
    if (sp && (first.type === "conv1d" || first.type === "conv2d")) {
      var dims = sp.split(/[x\u00d7, ]+/).filter(Boolean).map(Number);
      if (first.type === "conv2d" && dims.length === 1) dims = [dims[0], dims[0]];
      doc.spatial_size = dims;
    }
    return doc;
  }

  /* ------------------------------------------------------------------ requests */

  function postJSON(path, body, accept) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": accept || "application/json" },
      body: JSON.stringify(body)
    }).then(function (resp) {
      if (resp.ok) return resp;
      return resp.text().then(function (t) {
        var prob;
        try { prob = JSON.parse(t); } catch (e) { prob = { title: "HTTP " + resp.status, detail: t.slice(0, 300) }; }
        var err = new Error((prob.title || "Error") + ": " + (prob.detail || ""));
        err.problem = prob;
        throw err;
      });
    });
  }

  function run() {
    var doc;
    $("error").hidden = true;
    try { doc = buildRequest(); } catch (e) { fail(e.message); return; }
    $("status").textContent = "Running " + doc.schemes.length + " scheme" + (doc.schemes.length > 1 ? "s" : "") + "\u2026";
    $("run").disabled = true;
    var t0 = performance.now();
    postJSON("/v1/diagnose", doc).then(function (resp) { return resp.json(); }).then(function (body) {
      state.request = doc;
      state.response = body;
      state.labels = body.results.map(function (r, i) { return schemeLabel(doc.schemes[i]); });
      render();
      var secs = ((performance.now() - t0) / 1000).toFixed(1);
      $("status").textContent = "Compared " + body.results.length + " scheme" + (body.results.length > 1 ? "s" : "") +
        " on " + body.results[0].layers.length + " layers, batch " + body.batch + ", seed " + body.seed + " (" + secs + " s).";
    }).catch(function (e) {
      fail(e.message, e.problem && e.problem.errors);
    }).then(function () { $("run").disabled = false; });
  }

  /* ------------------------------------------------------------------ rendering */

  function render() {
    drawVerdicts();
    drawCurves();
    fillSelect($("hist-scheme"), state.labels);
    drawHistograms();
    fillSelect($("dl-scheme"), state.labels);
    var tensors = [];
    state.response.results[0].layers.forEach(function (l) {
      tensors.push(l.weight.name);
      if (l.bias) tensors.push(l.bias.name);
    });
    fillSelect($("dl-tensor"), tensors, tensors);
    setDownloadsEnabled(true);
    $("curl-diagnose").textContent = curl("/v1/diagnose", state.request, null);
    updateWeightsCurl();
    state.runs += 1;
    $("results").setAttribute("data-runs", String(state.runs));
  }

  function fillSelect(sel, labels, values) {
    var keep = sel.value;
    sel.textContent = "";
    labels.forEach(function (l, i) {
      var o = document.createElement("option");
      o.value = values ? values[i] : String(i);
      o.textContent = l;
      sel.appendChild(o);
    });
    if (Array.prototype.some.call(sel.options, function (o) { return o.value === keep; })) sel.value = keep;
  }

  function el(tag, cls, textContent) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (textContent !== undefined) e.textContent = textContent;
    return e;
  }

  function drawVerdicts() {
    var box = $("verdicts");
    box.textContent = "";
    state.response.results.forEach(function (r, i) {
      var card = el("article", "verdict v-" + r.verdict);
      card.setAttribute("data-verdict", r.verdict);
      card.setAttribute("data-scheme-index", String(i));
      var head = el("div", "vhead");
      var sw = el("span", "swatch");
      sw.style.backgroundColor = COLORS[i % COLORS.length];
      head.appendChild(sw);
      head.appendChild(el("h3", "vname", state.labels[i]));
      var chip = el("span", "chip v-" + r.verdict, VERDICT_WORDS[r.verdict] || r.verdict);
      chip.setAttribute("data-role", "verdict");
      head.appendChild(chip);
      card.appendChild(head);
      if (r.first_bad_layer !== null) {
        var fb = el("p", "firstbad");
        fb.appendChild(document.createTextNode("first shows at layer "));
        fb.appendChild(el("strong", null, r.first_bad_layer));
        card.appendChild(fb);
      }
      card.appendChild(el("p", "explanation", r.explanation));
      var groups = groupWarnings(r.warnings);
      if (groups.length) {
        var det = el("details", "warnings");
        det.appendChild(el("summary", null, groups.length + " warning" + (groups.length > 1 ? "s" : "")));
        var ul = el("ul");
        groups.forEach(function (g) {
          var li = el("li");
          li.appendChild(el("strong", null, g.where + ": "));
          li.appendChild(document.createTextNode(g.message));
          ul.appendChild(li);
        });
        det.appendChild(ul);
        card.appendChild(det);
      }
      box.appendChild(card);
    });
  }

  function groupWarnings(ws) {
    var byMsg = {}, order = [];
    ws.forEach(function (w) {
      if (!byMsg[w.message]) { byMsg[w.message] = []; order.push(w.message); }
      byMsg[w.message].push(w.tensor || w.layer);
    });
    return order.map(function (m) {
      var names = byMsg[m];
      var where = names.length > 3 ? names.slice(0, 2).join(", ") + " \u2026 " + names[names.length - 1] +
        " (" + names.length + ")" : names.join(", ");
      return { where: where, message: m };
    });
  }

  function pick(obj, path) {
    return path.split(".").reduce(function (o, k) { return o === null || o === undefined ? o : o[k]; }, obj);
  }

  function drawCurves() {
    if (!state.response) return;
    var results = state.response.results;
    var streamed = !!results[0].stream;
    [["forward", $("fwd-metric")], ["backward", $("bwd-metric")]].forEach(function (pair) {
      var which = pair[0], sel = pair[1];
      Array.prototype.forEach.call(sel.options, function (o) {
        o.disabled = o.value.indexOf("stream.") === 0 && !streamed;
      });
      if (sel.options[sel.selectedIndex].disabled) sel.value = sel.options[0].value;
      var metric = sel.value;
      var label = sel.options[sel.selectedIndex].textContent;
      /* a stream metric: one point per residual branch (named by its last layer), else one per layer */
      var stream = metric.indexOf("stream.") === 0;
      var names = stream ? results[0].stream.map(function (b) { return b.last_layer; })
                         : results[0].layers.map(function (l) { return l.name; });
      var series = results.map(function (r, i) {
        var rows = stream ? r.stream : r.layers, key = stream ? metric.slice(7) : metric;
        return { label: state.labels[i], color: COLORS[i % COLORS.length], dash: DASHES[i % DASHES.length],
                 values: rows.map(function (l) { var v = pick(l, key); return v === undefined ? null : v; }) };
      });
      var plot = $("plot-" + which);
      plot.setAttribute("data-metric", metric);
      window.WIPlots.lineChart(plot, { xLabels: names, series: series, log: true, yLabel: label + " (log)",
        ariaLabel: label + (stream ? " per residual branch" : " per layer") + ", one line per scheme, logarithmic axis" });
      var legend = $("legend-" + which);
      legend.textContent = "";
      series.forEach(function (s, i) {
        var li = el("li");
        li.appendChild(lineSwatch(s.color, s.dash));
        li.appendChild(document.createTextNode(s.label + " \u2014 "));
        li.appendChild(el("span", "chip small v-" + results[i].verdict, results[i].verdict));
        legend.appendChild(li);
      });
      drawTable($("table-" + which), names, series, label);
    });
  }

  function lineSwatch(color, dash) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 34 12");
    svg.setAttribute("class", "lswatch");
    svg.setAttribute("aria-hidden", "true");
    var line = document.createElementNS(NS, "path");
    line.setAttribute("d", "M1 6H33");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "2.5");
    line.setAttribute("stroke-dasharray", dash);
    svg.appendChild(line);
    var dot = document.createElementNS(NS, "circle");
    dot.setAttribute("cx", "17"); dot.setAttribute("cy", "6"); dot.setAttribute("r", "3.2");
    dot.setAttribute("fill", color);
    svg.appendChild(dot);
    return svg;
  }

  function drawTable(box, names, series, label) {
    box.textContent = "";
    var t = el("table");
    t.appendChild(el("caption", null, label));
    var tr = el("tr");
    tr.appendChild(el("th", null, "layer"));
    series.forEach(function (s) { var th = el("th", null, s.label); th.scope = "col"; tr.appendChild(th); });
    var thead = el("thead"); thead.appendChild(tr); t.appendChild(thead);
    var tb = el("tbody");
    names.forEach(function (n, i) {
      var row = el("tr");
      var th = el("th", null, n); th.scope = "row"; row.appendChild(th);
      series.forEach(function (s) {
        var v = s.values[i];
        row.appendChild(el("td", null, v === null ? "\u2014" : window.WIPlots.fmt(v)));
      });
      tb.appendChild(row);
    });
    t.appendChild(tb);
    box.appendChild(t);
  }

  function drawHistograms() {
    if (!state.response) return;
    var idx = Number($("hist-scheme").value || 0);
    var kind = $("hist-kind").value;
    var r = state.response.results[idx];
    var grid = $("hist-grid");
    grid.textContent = "";
    var color = COLORS[idx % COLORS.length];
    r.layers.forEach(function (l) {
      var cell = el("div", "hcell");
      var opts;
      if (kind === "weight") {
        var w = l.weight;
        var sub = w.distribution + paramsText(w.parameters);
        opts = { edges: w.histogram && w.histogram.edges, counts: w.histogram && w.histogram.counts, color: color,
                 density: window.WIPlots.pdf(w.distribution, w.parameters), bounds: w.bounds,
                 spike: w.distribution === "constant" ? w.parameters.value : null,
                 title: w.name, ariaLabel: "Histogram of " + w.name + ", " + sub };
        cell.appendChild(histBox(opts));
        var cap = el("p", "hcap", sub + " \u00b7 std " + window.WIPlots.fmt(w.std) + " (drawn " +
                     window.WIPlots.fmt(w.empirical.std) + ")");
        cell.appendChild(cap);
        if (w.warnings.length) cell.appendChild(el("p", "hwarn", w.warnings[0].code));
      } else {
        var h = l.activation.histogram;
        opts = { edges: h && h.edges, counts: h && h.counts, color: color, density: null, bounds: null, spike: null,
                 title: l.name + " \u00b7 " + actName(l.activation_function),
                 ariaLabel: "Histogram of the activations of " + l.name };
        cell.appendChild(histBox(opts));
        var extra = [];
        if (l.saturated_fraction !== null) extra.push(Math.round(100 * l.saturated_fraction) + "% saturated");
        if (l.dead_fraction !== null) extra.push(Math.round(100 * l.dead_fraction) + "% dead");
        cell.appendChild(el("p", "hcap", "std " + window.WIPlots.fmt(l.activation.std) +
                            (extra.length ? " \u00b7 " + extra.join(" \u00b7 ") : "")));
        if (l.problems.length) cell.appendChild(el("p", "hwarn", l.problems.join(", ")));
      }
      grid.appendChild(cell);
    });
  }

  function actName(a) {
    if (!a) return "";
    return typeof a === "string" ? a : a.name;
  }

  function histBox(opts) {
    var d = el("div", "hplot");
    window.WIPlots.histogram(d, opts);
    return d;
  }

  function paramsText(p) {
    var keys = Object.keys(p || {});
    if (!keys.length) return "";
    return "(" + keys.map(function (k) { return k + " " + window.WIPlots.fmt(p[k]); }).join(", ") + ")";
  }

  /* ------------------------------------------------------------------ downloads and curl */

  function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

  function curl(path, body, out) {
    return "curl -sS -X POST " + shellQuote(window.location.origin + path) + " \\\n  -H 'Content-Type: application/json'" +
      " \\\n  -d " + shellQuote(JSON.stringify(body)) + (out ? " \\\n  -o " + shellQuote(out) : "");
  }

  var EXT = { npy: "npy", npz: "npz", safetensors: "safetensors", json: "json" };

  function weightsRequest(format) {
    var idx = Number($("dl-scheme").value || 0);
    var doc = { architecture: state.request.architecture, scheme: state.request.schemes[idx],
                seed: state.request.seed, dtype: state.request.dtype, format: format };
    if (format === "npy") doc.tensors = [$("dl-tensor").value];
    return doc;
  }

  function updateWeightsCurl(format) {
    if (!state.request) return;
    if (typeof format !== "string") format = $("curl-weights").getAttribute("data-format") || "npz";
    $("curl-weights").setAttribute("data-format", format);
    $("curl-weights").textContent = curl("/v1/weights", weightsRequest(format), "weights." + EXT[format]);
  }

  function setDownloadsEnabled(on) {
    Array.prototype.forEach.call(document.querySelectorAll(".downloads button, .downloads select"), function (b) {
      b.disabled = !on;
    });
  }

  function saveBlob(blob, name) {
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url; a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 30000);
  }

  function download(format) {
    if (!state.request) return;
    updateWeightsCurl(format);
    var doc = weightsRequest(format);
    var status = $("dl-status");
    status.textContent = "Generating " + format + "\u2026";
    postJSON("/v1/weights", doc, "*/*").then(function (resp) {
      var cd = resp.headers.get("Content-Disposition") || "";
      var m = /filename="([^"]+)"/.exec(cd);
      var name = m ? m[1] : "weightinit-seed" + doc.seed + "." + EXT[format];
      return resp.blob().then(function (b) { return [b, name]; });
    }).then(function (pair) {
      saveBlob(pair[0], pair[1]);
      status.textContent = "Downloaded " + pair[1] + " (" + pair[0].size.toLocaleString("en") + " bytes).";
      status.setAttribute("data-bytes", String(pair[0].size));
    }).catch(function (e) {
      status.textContent = e.message;
    });
  }

  function downloadDiagnosis() {
    if (!state.response) return;
    var blob = new Blob([JSON.stringify(state.response, null, 1)], { type: "application/json" });
    var name = "weightinit-diagnosis-seed" + state.response.seed + ".json";
    saveBlob(blob, name);
    $("dl-status").textContent = "Saved " + name + ".";
  }

  function copy(id, button) {
    var txt = $(id).textContent;
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(txt).then(done, function () { selectText(id); });
    } else {
      selectText(id);
      button.textContent = "Selected: press Ctrl+C";
      setTimeout(function () { button.textContent = "Copy"; }, 2500);
    }
  }

  function selectText(id) {
    var range = document.createRange();
    range.selectNodeContents($(id));
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  document.addEventListener("DOMContentLoaded", function () {
    initControls();
    run();
  });
})();
