#!/usr/bin/env node
// weightinit from Node.js (20+): built-in fetch, the API's types generated from openapi.yaml,
// .npy / .npz decoded with npyjs (+ fflate), safetensors with lib/safetensors.js.
//
//   node client.js [--url http://127.0.0.1:8000] [--request request.json] [--show 6] [--dump out.json]
//
// It asks for the plan, then the weights as JSON, safetensors, npz and (one tensor) npy; prints
// every tensor's name, dtype, shape and first values; and checks each binary tensor's sha256,
// dtype and shape against what the JSON response reported, and the JSON values against the
// binary ones. Exit status: 0 all good, 1 a mismatch or an HTTP error, 2 bad usage.
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";

import { DTYPE_CODES, bf16ToNumber, f16ToNumber, roundsTo16 } from "./lib/floats.js";
import { readNpy, readNpz } from "./lib/numpy.js";
import { readSafetensors } from "./lib/safetensors.js";

/** @typedef {import("./types/api.js").components["schemas"]} Schemas */
/** @typedef {Schemas["RequestDocument"]} RequestDocument */
/** @typedef {Schemas["Report"]} Report */
/** @typedef {Schemas["WeightsDocument"]} WeightsDocument */
/** @typedef {Schemas["TensorWithValues"]} TensorWithValues */
/** @typedef {Schemas["Health"]} Health */
/** @typedef {Schemas["Problem"]} Problem */
/** @typedef {import("./lib/tensor.js").Tensor} Tensor */

/** The default request: a small MLP (override with --request FILE). @type {RequestDocument} */
const EXAMPLE = {
  architecture: {
    layers: [
      { type: "dense", name: "fc1", in_features: 16, out_features: 8, activation: "relu" },
      { type: "dense", name: "out", in_features: 8, out_features: 4, activation: "tanh" },
    ],
  },
  scheme: "auto",
  seed: 42,
  dtype: "float32",
};

class HttpError extends Error {}

/**
 * POST or GET a path; returns the response after checking its status and media type.
 * @param {string} base
 * @param {string} path
 * @param {{body?: unknown, accept?: string}} [opts]
 */
async function call(base, path, { body, accept = "application/json" } = {}) {
  const res = await fetch(new URL(path, base), {
    method: body === undefined ? "GET" : "POST",
    headers: { Accept: accept, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) {
    const type = res.headers.get("content-type") ?? "";
    /** @type {Partial<Problem>} */
    const problem = type.includes("json") ? await res.json() : { detail: await res.text() };
    throw new HttpError(`${path}: HTTP ${res.status} ${problem.title ?? ""}: ${problem.detail ?? ""}`);
  }
  const type = (res.headers.get("content-type") ?? "").split(";")[0];
  if (accept !== "*/*" && type !== accept) throw new HttpError(`${path}: asked for ${accept}, got ${type}`);
  return res;
}

/** @param {Response} res */
async function bytesOf(res) {
  return new Uint8Array(await res.arrayBuffer());
}

/** Nested JSON arrays -> a flat list in C order. @param {unknown} v @param {number[]} [out] */
function flatten(v, out = []) {
  if (Array.isArray(v)) for (const x of v) flatten(x, out);
  else out.push(/** @type {number} */ (v));
  return out;
}

/**
 * Problems of one decoded tensor against the JSON response (empty when it agrees).
 * @param {Tensor} t
 * @param {Map<string, TensorWithValues>} reported
 */
function check(t, reported) {
  const r = reported.get(t.name);
  if (!r) return [`${t.name} is not in the JSON response`];
  const problems = [];
  const digest = t.sha256();
  if (digest !== r.sha256) problems.push(`sha256 ${digest} but the JSON response says ${r.sha256}`);
  if (DTYPE_CODES[r.dtype] !== t.dtype) problems.push(`dtype ${t.dtype} but the JSON response says ${r.dtype}`);
  if (r.shape.join(",") !== t.shape.join(",")) problems.push(`shape [${t.shape}] but the JSON response says [${r.shape}]`);
  // The JSON's shortest decimals must round to exactly the binary values in the dtype.
  const values = flatten(r.values);
  if (values.length !== t.size) {
    problems.push(`${values.length} JSON values for ${t.size} elements`);
  } else {
    for (let i = 0; i < t.size; i++) {
      const x = values[i];
      const bits = t.bits(i);
      const ok =
        t.dtype === "F64" ? x === t.values[i]
        : t.dtype === "F32" ? Math.fround(x) === t.values[i]
        : roundsTo16(x, /** @type {number} */ (bits), t.dtype === "F16" ? f16ToNumber : bf16ToNumber,
                     t.dtype === "F16" ? 0x7bff : 0x7f7f);
      if (!ok) {
        problems.push(`JSON value #${i} ${x} does not round to the binary value ${t.values[i]}`);
        break;
      }
    }
  }
  return problems;
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      url: { type: "string", default: process.env.WEIGHTINIT_URL ?? "http://127.0.0.1:8000" },
      request: { type: "string" },
      show: { type: "string", default: "6" },
      dump: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (args.help) {
    console.log("usage: node client.js [--url URL] [--request REQUEST.json] [--show N] [--dump OUT.json]");
    return 0;
  }
  const base = args.url;
  const show = Number(args.show);
  /** @type {RequestDocument} */
  const request = args.request ? JSON.parse(await readFile(args.request, "utf8")) : EXAMPLE;
  // `format` in the body would override Accept: every format below is asked for explicitly.
  const { format: _ignored, ...doc } = request;

  /** @type {Health} */
  const health = await (await call(base, "/healthz")).json();
  console.log(`${base}: ${health.status}, weightinit ${health.version}`);

  /** @type {Report} */
  const plan = await (await call(base, "/v1/plan", { body: doc })).json();
  console.log(`plan: ${plan.totals.tensors} tensors, ${plan.totals.parameters} parameters, seed ${plan.seed}, ` +
              `numpy ${plan.engine.numpy}`);
  for (const t of plan.tensors) {
    const warn = t.warnings.length ? `  warnings: ${t.warnings.map((w) => w.code).join(", ")}` : "";
    console.log(`  ${t.name}: ${t.scheme.name} (${t.scheme.chosen_by}) ${t.distribution} std ${t.std.toPrecision(4)}${warn}`);
  }

  /** @type {WeightsDocument} */
  const json = await (await call(base, "/v1/weights", { body: { ...doc, format: "json" } })).json();
  // WeightsDocument is `Report & {tensors: TensorWithValues[]}` (allOf): its tensors carry values.
  const withValues = /** @type {TensorWithValues[]} */ (json.tensors ?? []);
  const reported = new Map(withValues.map((t) => [t.name, t]));

  const st = readSafetensors(await bytesOf(await call(base, "/v1/weights", { body: doc, accept: "application/vnd.safetensors" })));
  const npz = readNpz(await bytesOf(await call(base, "/v1/weights", { body: { ...doc, format: "npz" }, accept: "application/zip" })));
  // A .npy holds one tensor: ask for the first one alone.
  const first = plan.tensors[0].name;
  const npyBytes = await bytesOf(await call(base, "/v1/weights", { body: { ...doc, tensors: [first] }, accept: "application/x-npy" }));
  const npy = readNpy(first, npyBytes);

  const meta = JSON.parse(st.metadata.weightinit ?? "{}");
  console.log(`safetensors: ${st.tensors.length} tensors, metadata seed ${meta.seed}; npz manifest seed ${npz.manifest.seed}`);

  let ok = true;
  /** @type {Record<string, object[]>} */
  const dump = { safetensors: [], npz: [], npy: [] };
  /** @type {[string, Tensor[]][]} */
  const sources = [["safetensors", st.tensors], ["npz", npz.tensors], ["npy", [npy]]];
  for (const [format, tensors] of sources) {
    console.log(`${format}:`);
    const width = Math.max(...tensors.map((t) => t.name.length));
    for (const t of tensors) {
      const head = t.head(show).join(", ") + (t.size > show ? ", ..." : "");
      console.log(`  ${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  [${t.shape.join(", ")}]  sha256 ${t.sha256().slice(0, 16)}  [${head}]`);
      const problems = check(t, reported);
      for (const p of problems) console.log(`  ${"".padEnd(width)}  MISMATCH: ${p}`);
      ok &&= problems.length === 0;
      if (args.dump) dump[format].push(t.dump());
    }
    if (format !== "npy") {
      for (const name of reported.keys()) {
        if (!tensors.some((t) => t.name === name)) {
          console.log(`  MISMATCH: ${name} is in the JSON response but not in the ${format} file`);
          ok = false;
        }
      }
    }
  }
  if (args.dump) await writeFile(args.dump, JSON.stringify({ reported_sha256: Object.fromEntries([...reported].map(([k, v]) => [k, v.sha256])), formats: dump }));
  console.log(ok ? "all tensors match the sha256, dtype, shape and values of the JSON response"
                 : "some tensors do not match the JSON response");
  return ok ? 0 : 1;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => {
    console.error(`weightinit client: ${err instanceof Error ? err.message : err}`);
    process.exitCode = err instanceof HttpError || err instanceof TypeError ? 1 : 2;
  },
);
