"""Each encoder: exact length up front, readable by the reference readers, equal to the engine."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import orjson
import pytest
import safetensors.numpy as st_numpy

from tests.helpers import plan_of
from service.core.dtypes import DTYPES, as_float
from service.output import formats
from service.output.npy import header_length
from service.output.npz import encode as _encode_npz
from service.output.report import Report
from tests.helpers import artifact_of as encode
from tests.helpers import MLP, ZOO


def body(artifact) -> bytes:
    data = b"".join(bytes(c) for c in artifact.chunks())
    assert len(data) == artifact.length
    return data


def engine_arrays(doc):
    return {t.name: t.generate() for t in plan_of(doc).selected}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_npy_equals_numpy_save(dtype):
    doc = {**MLP, "dtype": dtype, "tensors": ["fc2.weight"]}
    data = body(encode(plan_of(doc), "npy"))
    expected = engine_arrays(doc)["fc2.weight"]
    buf = io.BytesIO()
    np.lib.format.write_array(buf, expected, allow_pickle=False)
    assert data == buf.getvalue()
    assert np.array_equal(np.load(io.BytesIO(data), allow_pickle=False), expected)


#: Every rank class and digit count; (1,) * 36 makes the header text end exactly on a 64-byte boundary
#: (NumPy then pads a full 64 bytes more).
SHAPES = [(), (1,), (7,), (64, 32), (10, 64), (123456789, 3), (2**40, 1), (3, 4, 5), (1, 2, 3, 4, 5),
          (99999,) * 8, (1,) * 32, (1,) * 36]


@pytest.mark.parametrize("descr", ["<f4", "<f8", "<f2", "<u2", "<U1", "<U4743", "<U123456789"])
@pytest.mark.parametrize("shape", SHAPES)
def test_npy_header_length_is_numpys(descr, shape):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    assert header_length(descr, shape) == len(buf.getvalue())


def test_npy_refuses_several_tensors():
    from service.core import SpecError

    with pytest.raises(SpecError, match="npz or safetensors"):
        encode(plan_of(MLP), "npy")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("force_zip64", [False, True])
def test_npz(dtype, force_zip64):
    doc = {**ZOO, "dtype": dtype, "seed": 4}
    plan = plan_of(doc)
    data = body(_encode_npz(Report(plan), force_zip64=force_zip64))
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = engine_arrays(doc)
        assert z.files == ["manifest"] + list(arrays)
        for name, a in arrays.items():
            assert np.array_equal(z[name], a) and z[name].dtype == a.dtype, name
        manifest = json.loads(str(z["manifest"]))
    assert manifest["seed"] == 4 and manifest["engine"]["numpy"] == np.__version__
    assert [t["name"] for t in manifest["tensors"]] == list(arrays)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None  # CRCs from the data descriptors check out


def test_npz_length_matches_sizes():
    plan = plan_of(ZOO)
    assert encode(plan, "npz").length == formats.totals(Report(plan))["bytes"]["npz"] == len(body(encode(plan, "npz")))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_safetensors_reader_accepts_it(dtype):
    doc = {**ZOO, "dtype": dtype, "seed": 8}
    data = body(encode(plan_of(doc), "safetensors"))
    loaded = st_numpy.load(data)
    arrays = engine_arrays(doc)
    assert set(loaded) == set(arrays)
    for name, a in arrays.items():
        assert np.array_equal(loaded[name], a), name
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    meta = json.loads(data[8:8 + n])["__metadata__"]
    report = json.loads(meta["weightinit"])
    assert report["seed"] == 8 and report["engine"]["bit_generator"] == "PCG64"


def read_safetensors(data: bytes) -> dict:
    """A minimal reader of the documented layout (handles BF16, which NumPy cannot type)."""
    n = int.from_bytes(data[:8], "little")
    head = json.loads(data[8:8 + n])
    out = {}
    kinds = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2"}
    for name, info in head.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + lo:8 + n + hi], kinds[info["dtype"]]).reshape(info["shape"])
    return out


def test_safetensors_bfloat16():
    doc = {**ZOO, "dtype": "bfloat16"}
    data = body(encode(plan_of(doc), "safetensors"))
    got = read_safetensors(data)
    for name, a in engine_arrays(doc).items():
        assert np.array_equal(got[name], a), name
    torch = pytest.importorskip("torch", reason="torch not installed: skipping the BF16 cross-read")
    from safetensors.torch import load

    for name, t in load(data).items():
        assert t.dtype == torch.bfloat16
        assert np.array_equal(t.view(torch.int16).numpy().view(np.uint16), got[name])


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_json_values_equal_npy_values_exactly(dtype):
    doc = {**MLP, "dtype": dtype, "seed": 5}
    data = body(encode(plan_of(doc), "json"))
    parsed = orjson.loads(data)
    arrays = engine_arrays(doc)
    for entry in parsed["tensors"]:
        stored = arrays[entry["name"]]
        exact = as_float(stored, DTYPES[dtype]).astype(np.float64)
        # The printed decimals parse back to the same value in the tensor's dtype.
        back = np.array(entry["values"], dtype=np.float64)
        if dtype == "bfloat16":
            from service.core.dtypes import float32_to_bfloat16_bits

            assert np.array_equal(float32_to_bfloat16_bits(back.astype(np.float32)), stored)
        else:
            assert np.array_equal(back.astype(DTYPES[dtype].storage), stored)
        import hashlib

        assert entry["sha256"] == hashlib.sha256(stored.tobytes()).hexdigest()
        assert entry["empirical"]["max"] == float(exact.max())
        assert entry["empirical"]["min"] == float(exact.min())


def test_json_float32_uses_shortest_repr():
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "t", "shape": [1000]}]},
           "scheme": {"name": "uniform", "low": -1, "high": 1}}
    data = orjson.loads(body(encode(plan_of(doc), "json")))
    text = orjson.dumps(data["tensors"][0]["values"]).decode()
    values = engine_arrays(doc)["t"]
    # Each printed number is numpy's shortest float32 repr of the value.
    printed = text.strip("[]").split(",")
    assert [float(p) for p in printed] == [float(np.format_float_positional(v, unique=True)) for v in values]
