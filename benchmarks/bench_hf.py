"""A Hugging Face config becomes a loadable, sharded model folder: weightinit over HTTP against
transformers' own ``from_config`` + ``save_pretrained`` on the same machine.

    python -m benchmarks.bench_hf [--blocks N] [--repeat R]

The model is Llama-2-7B's config.json (hidden 4096, 32 heads, MLP 11008, vocab 32000), bfloat16 as
the config says, sharded at ``max_shard_size`` "2GB". ``--blocks 32`` is the whole 7B model; the
default keeps 8 of its 32 blocks (1.88e9 parameters, 3.8 GB), because transformers holds the whole
model in memory (13.5 GB at 7B, more while saving) and each row writes the folder to disk. The cost
of both sides is linear in the parameters, so the ratio carries over (the table says which size ran).

Rows, each with a new seed (distinct work; nothing is cached):
- baseline: a fresh Python process runs ``torch.manual_seed(s); AutoModelForCausalLM.from_config(cfg,
  dtype=bfloat16)`` then ``save_pretrained(DIR, max_shard_size="2GB")`` (torch CPU, all cores);
- ``weightinit fetch URL doc -o DIR/ --parallel 2`` against a local gunicorn (the defaults: 2
  workers): the hf tar in proven Range parts, checked, unpacked into DIR;
- one stream: ``POST /v1/weights`` with ``format: hf``, the tar written to disk as it arrives;
- ``weightinit generate doc -o DIR/`` (offline, no HTTP).
Time is wall clock from start to the folder on disk; "peak RSS" is the process that holds the model
(transformers' process; for weightinit the gunicorn worker's growth and the client).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks.common import machine_header, table
from benchmarks.servers import ROOT, reset_peak, rss_kib, start_gunicorn

#: meta-llama/Llama-2-7b-hf config.json (the keys that shape it, and the rest as published).
LLAMA2_7B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32, "vocab_size": 32000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "hidden_act": "silu", "initializer_range": 0.02,
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "torch_dtype": "float16", "attention_bias": False,
}
SHARD = "2GB"

TRANSFORMERS_SCRIPT = r"""
import json, resource, sys, time
import torch
from transformers import AutoConfig, AutoModelForCausalLM
cfg, out, seed = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
torch.manual_seed(seed)
model = AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg), dtype=torch.bfloat16)
built = time.perf_counter()
model.save_pretrained(out, max_shard_size=sys.argv[4])
done = time.perf_counter()
print(json.dumps({"init": built - t0, "save": done - built,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def config(blocks: int) -> dict:
    return {**LLAMA2_7B, "num_hidden_layers": blocks, "torch_dtype": "bfloat16"}


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def run_transformers(cfg: dict, out: str, seed: int) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", TRANSFORMERS_SCRIPT, json.dumps(cfg), out, str(seed), SHARD],
                       capture_output=True, text=True, check=True, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    wall = time.perf_counter() - t0
    return {"seconds": wall, **json.loads(r.stdout.strip().splitlines()[-1])}


def run_cli(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "service", *args], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def run_stream(url: str, body: bytes, out: str) -> float:
    import requests

    t0 = time.perf_counter()
    with requests.post(url + "/v1/weights", data=body, headers={"Content-Type": "application/json"}, stream=True,
                       timeout=3600) as r:
        r.raise_for_status()
        with open(out, "wb") as f:
            for chunk in r.iter_content(1 << 22):
                f.write(chunk)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=8, help="blocks of the 32 of Llama-2-7B kept (32: the whole model)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each row (new seeds each)")
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args()
    cfg = config(args.blocks)
    work = tempfile.mkdtemp(prefix="bench-hf-", dir=os.environ.get("BENCH_DIR"))
    seeds = iter(range(1000, 10 ** 6))
    results: dict[str, list] = {}
    server = start_gunicorn("service:create_app()", "hf")
    try:
        worker_pids = server.workers()
        for _ in range(args.repeat):
            def doc(seed: int) -> dict:
                return {"architecture": {"hf_config": cfg}, "seed": seed, "format": "hf", "max_shard_size": SHARD}

            def fresh(name: str) -> str:
                path = os.path.join(work, name)
                shutil.rmtree(path, ignore_errors=True)
                return path

            out = fresh("transformers")
            r = run_transformers(cfg, out, next(seeds))
            size = folder_bytes(out)
            results.setdefault("baseline", []).append((r["seconds"], size, f"{r['peak_mib']:.0f}",
                                                        f"init {r['init']:.1f} s + save {r['save']:.1f} s"))
            shutil.rmtree(out)

            for pid in worker_pids:
                reset_peak(pid)
            idle = {pid: rss_kib(pid) for pid in worker_pids}
            req = os.path.join(work, "req.json")
            with open(req, "w") as f:
                json.dump(doc(next(seeds)), f)
            out = fresh("fetch") + "/"
            secs = run_cli(["fetch", server.url, req, "-o", out, "--parallel", str(args.parallel), "--no-progress"])
            growth = max(rss_kib(pid, "VmHWM") - idle[pid] for pid in worker_pids) / 1024
            results.setdefault("fetch", []).append((secs, folder_bytes(out), f"worker +{growth:.0f}", ""))
            shutil.rmtree(out)

            tar = os.path.join(work, "model.tar")
            secs = run_stream(server.url, json.dumps(doc(next(seeds))).encode(), tar)
            results.setdefault("stream", []).append((secs, os.path.getsize(tar), "", "tar, not unpacked"))
            os.unlink(tar)

            with open(req, "w") as f:
                json.dump(doc(next(seeds)), f)
            out = fresh("generate") + "/"
            secs = run_cli(["generate", req, "-o", out])
            results.setdefault("generate", []).append((secs, folder_bytes(out), "", "offline"))
            shutil.rmtree(out)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    labels = {
        "baseline": "transformers from_config + save_pretrained (baseline)",
        "fetch": f"weightinit fetch -o DIR/ --parallel {args.parallel} (HTTP, proven parts, unpacked)",
        "stream": "POST /v1/weights format hf, one stream to disk",
        "generate": "weightinit generate -o DIR/ (offline)",
    }
    base = min(r[0] for r in results["baseline"])
    rows = []
    for key, runs in results.items():
        best = min(runs, key=lambda r: r[0])
        rows.append([labels[key], f"{best[1] / 1e9:.2f} GB", f"{best[0]:.1f}", f"{base / best[0]:.2f}x", best[2], best[3]])
    params = 2 * 32000 * 4096 + args.blocks * (4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096) + 4096
    print(machine_header())
    print(f"Llama-2-7B config, {args.blocks} of 32 blocks ({params / 1e9:.2f}e9 parameters), bfloat16, "
          f"max_shard_size {SHARD}; best of {args.repeat}, a new seed per run\n")
    print(table(["row", "folder", "seconds", "speed vs baseline", "peak RSS MiB", "note"], rows))


if __name__ == "__main__":
    main()
