"""The hf format (service/output/hf.py): save_pretrained's folder as a tar, split as huggingface_hub
splits, each shard what the safetensors library writes, every byte reachable by a Range part, and
loadable by transformers."""

from __future__ import annotations

import io
import json
import struct
import tarfile
from dataclasses import dataclass

import numpy as np
import pytest
from huggingface_hub import split_state_dict_into_shards_factory

from service.core import SpecError
from service.output import formats, hf
from service.output.artifact import segment_size
from service.output.options import DEFAULT, Options
from service.output.report import Report
from tests.helpers import GPT2_TINY, LLAMA_TINY, MLP, plan_of
from tests.output.test_tar import tarfile_bytes

#: name -> (document, options): one shard, several, a shard per tensor, every dtype.
CASES = {
    "llama one file": (LLAMA_TINY, DEFAULT),
    "llama 2 shards": (LLAMA_TINY, Options(max_shard_size=20_000)),
    "llama a shard per tensor, minimal": (LLAMA_TINY, Options("minimal", 1)),
    "gpt2 float16 5 shards": (GPT2_TINY, Options(max_shard_size=2_000)),
    "llama bfloat16": ({**LLAMA_TINY, "dtype": "bfloat16"}, Options("minimal", 9_000)),
    "llama float64": ({**LLAMA_TINY, "dtype": "float64", "seed": 3}, Options(max_shard_size=50_000)),
}


@dataclass(frozen=True)
class Sized:
    """A stand-in tensor: a name and a size."""

    name: str
    nbytes: int


def report_of(doc) -> Report:
    return Report(plan_of(doc))


def body(artifact) -> bytes:
    data = b"".join(bytes(c) for c in artifact.chunks())
    assert len(data) == artifact.length
    return data


def read_tar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t.getmembers() if m.isreg()}


def header(shard: bytes) -> dict:
    (n,) = struct.unpack("<Q", shard[:8])
    return json.loads(shard[8:8 + n])


@pytest.mark.parametrize("sizes, limit", [
    ([3, 3, 3], 10), ([3, 3, 3, 3], 9), ([5, 20, 5], 10), ([20, 5, 5, 20], 10), ([10, 10], 10), ([1] * 7, 1),
    ([4, 11, 4, 4, 12], 11), ([7], 3), ([2, 9, 2], 10),
])
def test_split_is_huggingface_hubs(sizes, limit):
    """Shards as split_state_dict_into_shards_factory makes them (a tensor over the limit alone, before
    the shard being filled)."""
    tensors = [Sized(f"t{i}", n) for i, n in enumerate(sizes)]
    theirs = split_state_dict_into_shards_factory({t.name: t for t in tensors}, get_storage_size=lambda t: t.nbytes,
                                                  filename_pattern="model{suffix}.safetensors", max_shard_size=limit)
    ours = hf.split(tensors, limit)
    names = [hf.shard_name(i, len(ours)) for i in range(len(ours))]
    assert {n: [t.name for t in s] for n, s in zip(names, ours)} == theirs.filename_to_tensors


@pytest.mark.parametrize("doc, options", CASES.values(), ids=CASES.keys())
def test_folder_is_save_pretrained_layout(doc, options):
    report = report_of(doc)
    plan = report.plan
    files = read_tar(body(formats.encode(report, "hf", options=options)))
    shards = hf.split(plan.selected, options.max_shard_size)
    n = len(shards)
    expected = ["config.json"] + ([] if n == 1 else [hf.INDEX]) + [hf.shard_name(i, n) for i in range(n)]
    assert list(files) == expected
    assert n == 1 or n > 1 and all(f"-of-{n:05d}" in name for name in expected[2:])
    config = json.loads(files["config.json"])
    assert files["config.json"] == (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
    assert config["dtype"] == plan.request.dtype
    assert config["model_type"] == doc["architecture"]["hf_config"]["model_type"]
    held = {}
    for name in expected[-n:]:
        head = header(files[name])
        meta = head.pop("__metadata__")
        assert list(meta) == (["format"] if options.metadata == "minimal" else ["format", "weightinit"])
        assert meta["format"] == "pt"
        assert list(head) == sorted(head)  # name order, offsets ascending
        held.update(dict.fromkeys(head, name))
    assert set(held) == {t.name for t in plan.selected}
    if n > 1:
        index = json.loads(files[hf.INDEX])
        assert files[hf.INDEX] == (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
        assert index == {"metadata": {"total_parameters": plan.total_elements,
                                      "total_size": sum(t.nbytes for t in plan.selected)}, "weight_map": held}


@pytest.mark.parametrize("doc, options", CASES.values(), ids=CASES.keys())
def test_every_tensor_holds_the_engines_values(doc, options):
    import safetensors.numpy as st_numpy

    plan = plan_of(doc)
    files = read_tar(body(formats.encode(Report(plan), "hf", options=options)))
    loaded = {}
    for name, data in files.items():
        if name.endswith(".safetensors"):
            if plan.request.dtype == "bfloat16":
                loaded.update(_bf16_bits(data))
            else:
                loaded.update(st_numpy.load(data))
    for t in plan.selected:
        assert np.array_equal(loaded[t.name], t.generate()), t.name


def _bf16_bits(data: bytes) -> dict:
    torch = pytest.importorskip("torch", reason="torch reads BF16 shards")
    from safetensors.torch import load

    return {k: v.view(torch.int16).numpy().view(np.uint16) for k, v in load(data).items()}


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "bfloat16"])
def test_a_minimal_shard_is_what_the_safetensors_library_writes(dtype):
    """With metadata minimal each file is byte for byte safetensors' own ``save`` of its tensors."""
    torch = pytest.importorskip("torch", reason="the safetensors library writes BF16 from torch tensors")
    from safetensors.torch import save

    doc = {**GPT2_TINY, "dtype": dtype}
    plan = plan_of(doc)
    files = read_tar(body(formats.encode(Report(plan), "hf", options=Options("minimal", 3_000))))
    by_name = {t.name: t for t in plan.selected}
    shards = [n for n in files if n.endswith(".safetensors")]
    assert len(shards) > 2
    for name in shards:
        names = [k for k in header(files[name]) if k != "__metadata__"]
        tensors = {k: torch.from_numpy(by_name[k].generate().copy()) for k in names}
        if dtype == "bfloat16":
            tensors = {k: v.view(torch.bfloat16) for k, v in tensors.items()}
        assert files[name] == save(tensors, metadata={"format": "pt"}), name


@pytest.mark.parametrize("doc, options", CASES.values(), ids=CASES.keys())
def test_the_tar_is_tarfiles_and_its_length_is_known_before_drawing(doc, options):
    report = report_of(doc)
    artifact = formats.encode(report, "hf", options=options)
    data = body(artifact)
    files = read_tar(data)
    assert data == tarfile_bytes(artifact.filename[:-len(".tar")], files)
    assert artifact.length == len(data) == hf.size(report, options) == formats.totals(report, options)["bytes"]["hf"]
    assert artifact.length == sum(segment_size(s) for s in artifact.segments)
    assert artifact.media_type == "application/x-tar" and artifact.ranges


def test_byte_range_over_every_segment_boundary():
    """Every boundary between two segments (headers, tensors, padding, the end), a byte either side,
    and ranges spanning several: the bytes equal the whole artifact's."""
    artifact = formats.encode(report_of(GPT2_TINY), "hf", options=Options(max_shard_size=1_500))
    data = body(artifact)
    cuts, at = [0], 0
    for seg in artifact.segments:
        at += segment_size(seg)
        cuts.append(at)
    assert cuts[-1] == len(data) and len(cuts) > 30
    spans = {(max(c - 1, 0), min(c + 1, len(data))) for c in cuts} | {(c, min(c + 1, len(data))) for c in cuts[:-1]}
    spans |= {(a, b) for a, b in zip(cuts, cuts[3:])} | {(a + 1, b - 1) for a, b in zip(cuts, cuts[2:]) if b - a > 2}
    spans |= {(0, len(data)), (len(data) - 1, len(data))}
    for a, b in sorted(spans):
        assert b"".join(bytes(p) for p in artifact.byte_range(a, b, parallel=False)) == data[a:b], (a, b)


def test_options_change_the_bytes_and_the_size():
    report = report_of(LLAMA_TINY)
    sizes = {o: formats.encode(report, "hf", options=o).length for o in
             (DEFAULT, Options("minimal"), Options(max_shard_size=20_000), Options("minimal", 20_000))}
    assert len(set(sizes.values())) == 4
    assert sizes[Options("minimal")] < sizes[DEFAULT]


@pytest.mark.parametrize("doc, field, message", [
    (MLP, "format", "needs architecture.hf_config"),
    ({**LLAMA_TINY, "tensors": ["lm_head.weight"]}, "tensors", "tensors must be null"),
])
def test_what_the_format_cannot_write(doc, field, message):
    plan = plan_of(doc)
    assert not formats.get("hf").applies(plan)
    assert "hf" not in formats.totals(Report(plan))["bytes"]
    with pytest.raises(SpecError, match=message) as e:
        formats.artifact(plan, "hf")
    assert e.value.field == field


@pytest.mark.parametrize("fmt", ["json", "npz", "safetensors"])
def test_other_formats_hold_the_same_tensors(fmt):
    """json, npz and safetensors of an hf_config document: the folder's tensors, in state_dict order."""
    import safetensors.numpy as st_numpy

    plan = plan_of(LLAMA_TINY)
    data = body(formats.artifact(plan, fmt))
    if fmt == "json":
        got = {t["name"]: np.array(t["values"], np.float32) for t in json.loads(data)["tensors"]}
    elif fmt == "npz":
        with np.load(io.BytesIO(data)) as z:
            got = {k: z[k] for k in z.files if k != "manifest"}
    else:
        got = st_numpy.load(data)
    assert list(got) == [t.name for t in plan.selected] or fmt == "safetensors" and set(got) == {
        t.name for t in plan.selected}
    for t in plan.selected:
        assert np.array_equal(got[t.name].reshape(t.shape), t.generate()), t.name


def test_transformers_loads_the_sharded_folder(tmp_path):
    """from_pretrained reads the index and every shard: no key missing, unexpected or mismatched, and the
    parameters are the engine's values."""
    torch = pytest.importorskip("torch", reason="transformers needs torch")
    transformers = pytest.importorskip("transformers")
    plan = plan_of(LLAMA_TINY)
    data = body(formats.artifact(plan, "hf", options=Options(max_shard_size=10_000)))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        t.extractall(tmp_path, filter="data")
    (folder,) = tmp_path.iterdir()
    assert len(list(folder.glob("model-*-of-*.safetensors"))) > 2
    model, info = transformers.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}
    state = model.state_dict()
    for t in plan.selected:
        assert torch.equal(state[t.name], torch.from_numpy(t.generate())), t.name


#: 723 tensors of a few bytes: a shard per tensor, each embedding the 0.7 MB report with metadata full.
DEEP = {"architecture": {"hf_config": {**LLAMA_TINY["architecture"]["hf_config"], "num_hidden_layers": 80}}}


def test_the_folders_headers_are_bounded():
    """metadata full copies the report into every shard: past MAX_HEADER_BYTES of headers the folder is a
    413 naming metadata (the plan's size is null, the plan itself still answers); minimal fits."""
    report = report_of(DEEP)
    full = Options("full", 1)
    with pytest.raises(SpecError, match="ask for metadata: minimal") as e:
        formats.encode(report, "hf", options=full)
    assert (e.value.field, e.value.limit, e.value.allowed) == ("metadata", "max_hf_header_bytes", hf.MAX_HEADER_BYTES)
    assert formats.totals(report, full)["bytes"]["hf"] is None
    minimal = Options("minimal", 1)
    assert formats.totals(report, minimal)["bytes"]["hf"] == formats.encode(report, "hf", options=minimal).length
