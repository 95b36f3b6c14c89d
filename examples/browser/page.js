// The page: POST a request document to a weightinit service on another origin, receive safetensors,
// verify it with WebCrypto, decode it and draw one histogram. No build step, no library.
//
// What it checks, in order (any failure is shown and stops it):
//   1. the whole file against Repr-Digest (sha-256, RFC 9530), when the service sent one;
//   2. the safetensors header against the report embedded in __metadata__.weightinit (names,
//      order, dtypes, shapes);
//   3. each tensor's sha256 against the one the JSON response reports for the same document (the
//      embedded report holds the theory, not digests: they need the values, drawn after the header).
import { histogram } from "./histogram.js";
import { DTYPE_CODES, ITEMSIZE, bitsAt, decode, f64Hex, readSafetensors } from "./safetensors.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The default request document: a small MLP. */
const EXAMPLE = {
  architecture: {
    layers: [
      { type: "dense", name: "fc1", in_features: 64, out_features: 32, activation: "relu" },
      { type: "dense", name: "fc2", in_features: 32, out_features: 10, activation: "softmax" },
    ],
  },
  scheme: "auto",
  seed: 42,
  dtype: "float32",
};
/** The response headers shown; each is one a page can read only because the service exposes it. */
const SHOWN = ["Content-Length", "ETag", "Repr-Digest", "Content-Disposition", "X-Weightinit-Seed",
               "X-Weightinit-Scheme", "X-Weightinit-Version", "X-Request-ID"];
const SHOWN_VALUES = 4;

class Failure extends Error {
  /** @param {"network" | "http" | "integrity" | "input"} kind @param {string} message @param {number} [status] */
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/**
 * POST the document to /v1/weights; the response when it is a 2xx, else a Failure with the problem.
 * @param {string} base the service's URL
 * @param {object} doc
 * @param {string} accept
 */
async function postWeights(base, doc, accept) {
  const url = new URL("v1/weights", base.endsWith("/") ? base : `${base}/`);
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      mode: "cors",
      credentials: "omit", // the API reads no cookie; the service never allows credentials
      headers: { "Content-Type": "application/json", Accept: accept },
      body: JSON.stringify(doc),
    });
  } catch (e) {
    // fetch rejects, with a TypeError and no details (on purpose), when there is no response the
    // page may see: the service is unreachable, or the browser withheld its answer (CORS).
    const err = /** @type {Error} */ (e);
    throw new Failure("network", `${err.name}: ${err.message}. Either ${url.origin} cannot be reached, or the ` +
      `browser refused its answer because this page's origin (${location.origin}) is not in its ` +
      "WEIGHTINIT_CORS_ORIGINS (the browser's console says which).");
  }
  if (!res.ok) {
    const type = res.headers.get("Content-Type") ?? "";
    if (type.startsWith("application/problem+json")) {
      const problem = await res.json();
      const fields = Object.entries(problem.errors ?? {}).map(([field, msgs]) => `${field}: ${msgs.join("; ")}`);
      throw new Failure("http", [`HTTP ${res.status} ${problem.title}: ${problem.detail}`, ...fields].join("\n"),
                        res.status);
    }
    throw new Failure("http", `HTTP ${res.status} ${res.statusText}`, res.status);
  }
  return res;
}

/** The sha-256 of some bytes (WebCrypto). @param {BufferSource} data */
async function sha256(data) {
  if (!crypto.subtle) {
    throw new Failure("input", "WebCrypto (crypto.subtle) needs a secure context: serve this page over https, " +
      "or from localhost / 127.0.0.1");
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

const hex = (/** @type {Uint8Array} */ b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const base64 = (/** @type {Uint8Array} */ b) => btoa(String.fromCharCode(...b));

/**
 * Fetch, verify and decode. @param {string} base @param {object} doc
 */
async function load(base, doc) {
  const res = await postWeights(base, { ...doc, format: "safetensors" }, "application/vnd.safetensors");
  const headers = Object.fromEntries(SHOWN.map((h) => [h, res.headers.get(h)]));
  const buffer = await res.arrayBuffer();
  const length = headers["Content-Length"];
  if (length !== null && Number(length) !== buffer.byteLength) {
    throw new Failure("integrity", `${buffer.byteLength} bytes received, Content-Length says ${length}`);
  }
  // 1. the whole file (Repr-Digest: sent for artifacts up to WEIGHTINIT_DIGEST_MAX_BYTES)
  const repr = headers["Repr-Digest"];
  let fileDigest = "not sent (a large artifact streams without it)";
  if (repr !== null) {
    const want = /sha-256=:([A-Za-z0-9+/]+=*):/.exec(repr)?.[1];
    const got = base64(await sha256(buffer));
    if (got !== want) throw new Failure("integrity", `the file's sha-256 is ${got}; Repr-Digest says ${repr}`);
    fileDigest = "verified";
  }
  // 2. the header against the embedded report
  const { metadata, tensors } = readSafetensors(buffer);
  if (typeof metadata.weightinit !== "string") throw new Failure("integrity", "no __metadata__.weightinit report");
  const report = JSON.parse(metadata.weightinit);
  const theory = new Map(report.tensors.map((/** @type {any} */ t) => [t.name, t]));
  const names = tensors.map((t) => t.name).join(", ");
  if (names !== report.tensors.map((/** @type {any} */ t) => t.name).join(", ")) {
    throw new Failure("integrity", `the file holds ${names}; its report lists ${[...theory.keys()].join(", ")}`);
  }
  for (const t of tensors) {
    const r = theory.get(t.name);
    if (DTYPE_CODES[r.dtype] !== t.dtype || r.shape.join(",") !== t.shape.join(",")) {
      throw new Failure("integrity", `${t.name} is ${t.dtype} [${t.shape}]; the report says ${r.dtype} [${r.shape}]`);
    }
  }
  // 3. every tensor's bytes against the sha256 of the JSON response's report
  let tensorDigests = "";
  try {
    const json = await (await postWeights(base, { ...doc, format: "json" }, "application/json")).json();
    const reported = new Map(json.tensors.map((/** @type {any} */ t) => [t.name, t.sha256]));
    for (const t of tensors) {
      const got = hex(await sha256(t.bytes));
      if (got !== reported.get(t.name)) {
        throw new Failure("integrity", `${t.name}: sha256 ${got}; the report says ${reported.get(t.name)}`);
      }
    }
    tensorDigests = `every tensor's sha256 matches the report (${tensors.length} tensors)`;
  } catch (e) {
    if (!(e instanceof Failure && e.status === 413)) throw e;
    tensorDigests = `tensor sha256s not checked: the JSON report is over a limit (${e.message.split("\n")[0]})`;
  }
  return { headers, report, theory, tensors, fileDigest, tensorDigests };
}

/** Every tensor's stored bits and decoded values (as f64 bits), in hex: for exact comparisons. */
async function dump(/** @type {Awaited<ReturnType<typeof load>>["tensors"]} */ tensors) {
  const out = [];
  for (const t of tensors) {
    const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
    const width = 2 * ITEMSIZE[/** @type {keyof typeof ITEMSIZE} */ (t.dtype)];
    const values = decode(t.bytes, t.dtype);
    out.push({
      name: t.name, dtype: t.dtype, shape: t.shape, sha256: hex(await sha256(t.bytes)),
      bits: Array.from(values, (_, i) => bitsAt(view, t.dtype, i).toString(16).padStart(width, "0")),
      f64_bits: Array.from(values, f64Hex),
    });
  }
  return JSON.stringify(out);
}

/** @param {string} state @param {string} text @param {string} [kind] */
function status(state, text, kind = "") {
  const el = $("status");
  el.dataset.state = state;
  el.dataset.error = kind;
  el.textContent = text;
}

/** @param {Awaited<ReturnType<typeof load>>} result @param {string} name */
function draw(result, name) {
  const t = result.tensors.find((x) => x.name === name);
  if (!t) return;
  const values = decode(t.bytes, t.dtype);
  let sum = 0;
  for (const x of values) sum += x;
  const mean = sum / values.length;
  let sq = 0;
  for (const x of values) sq += (x - mean) ** 2;
  const r = result.theory.get(name);
  const figure = $("histogram");
  const caption = document.createElement("figcaption");
  caption.textContent = `${name}: ${values.length} values, mean ${mean.toPrecision(4)}, std ` +
    `${Math.sqrt(sq / values.length).toPrecision(4)} (theory: ${r.distribution}, std ${Number(r.std).toPrecision(4)})`;
  figure.replaceChildren(histogram(values, `Histogram of ${name}`), caption);
  figure.dataset.tensor = name;
}

/** @param {Awaited<ReturnType<typeof load>>} result */
function show(result) {
  const dl = $("headers");
  dl.replaceChildren();
  for (const [name, value] of Object.entries(result.headers)) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.dataset.header = name;
    dd.textContent = value ?? "(not sent)";
    dl.append(dt, dd);
  }
  const rows = result.tensors.map((t) => {
    const tr = document.createElement("tr");
    tr.dataset.name = t.name;
    const r = result.theory.get(t.name);
    const first = Array.from(decode(t.bytes, t.dtype, SHOWN_VALUES), (x) => x.toPrecision(5)).join(", ");
    for (const text of [t.name, t.dtype, `[${t.shape.join(", ")}]`, r.distribution, first]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  $("tensors").querySelector("tbody")?.replaceChildren(...rows);
  const select = /** @type {HTMLSelectElement} */ ($("tensor"));
  select.replaceChildren(...result.tensors.map((t) => new Option(t.name, t.name)));
  select.onchange = () => draw(result, select.value);
  draw(result, result.tensors[0].name);
  const details = /** @type {HTMLDetailsElement} */ ($("decoded"));
  const area = /** @type {HTMLTextAreaElement} */ ($("dump"));
  area.value = "";
  details.open = false;
  details.ontoggle = async () => {
    if (details.open && !area.value) area.value = await dump(result.tensors);
  };
  $("result").hidden = false;
}

async function submit(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  $("result").hidden = true;
  status("busy", "Fetching ...");
  try {
    let doc;
    try {
      doc = JSON.parse(/** @type {HTMLTextAreaElement} */ ($("doc")).value);
    } catch (e) {
      throw new Failure("input", `the request document is not JSON: ${/** @type {Error} */ (e).message}`);
    }
    const result = await load(/** @type {HTMLInputElement} */ ($("url")).value.trim(), doc);
    show(result);
    status("ok", `${result.tensors.length} tensors (seed ${result.report.seed}). Repr-Digest: ${result.fileDigest}; ` +
      `${result.tensorDigests}.`);
  } catch (e) {
    const kind = e instanceof Failure ? e.kind : "input";
    status("error", /** @type {Error} */ (e).message, kind);
  }
}

const params = new URLSearchParams(location.search);
/** @type {HTMLInputElement} */ ($("url")).value = params.get("url") ?? "http://127.0.0.1:8000";
/** @type {HTMLTextAreaElement} */ ($("doc")).value = JSON.stringify(EXAMPLE, null, 2);
$("form").addEventListener("submit", submit);
status("idle", "");
