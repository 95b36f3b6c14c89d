"""``weightinit generate -o DIR/`` (the hf format's folder) and ``-o model.tar``: the files are the tar's
members byte for byte; a folder takes only the hf format; the files of an earlier folder go; a failure
to write leaves nothing."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from service import cli
from service.output import formats
from service.output.options import Options
from tests.helpers import LLAMA_TINY, MLP, plan_of


def run(*args):
    return subprocess.run([sys.executable, "-m", "service", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def request(tmp_path, doc, name="req.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def tar_members(doc: dict, options: Options) -> dict[str, bytes]:
    data = b"".join(bytes(c) for c in formats.artifact(plan_of(doc), "hf", options=options).chunks())
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t.getmembers() if m.isreg()}


def files_in(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("fields, options, shards", [
    ({}, Options(), 1),
    ({"max_shard_size": 20_000}, Options(max_shard_size=20_000), 2),
    ({"max_shard_size": "4KB", "metadata": "minimal"}, Options("minimal", 4_000), 9),
])
@pytest.mark.parametrize("how", ["DIR/", "existing DIR", "--format hf DIR/"])
def test_generate_folder_writes_the_tars_members(tmp_path, fields, options, shards, how):
    out = tmp_path / "model"
    if how == "existing DIR":
        out.mkdir()
    extra = ["--format", "hf"] if how.startswith("--format") else []
    r = run("generate", request(tmp_path, {**LLAMA_TINY, **fields}), "-o", f"{out}/" if "/" in how else out, *extra)
    assert r.returncode == 0, r.stderr
    got = files_in(out)
    assert got == tar_members(LLAMA_TINY, options)
    assert sum(name.endswith(".safetensors") for name in got) == shards
    assert r.stderr.startswith(f"wrote {out}") and f"{len(plan_of(LLAMA_TINY).selected)} tensors" in r.stderr


@pytest.mark.parametrize("name, extra", [("model.tar", []), ("model.bin", ["--format", "hf"])])
def test_generate_tar(tmp_path, name, extra):
    r = run("generate", request(tmp_path, {**LLAMA_TINY, "max_shard_size": 9000}), "-o", tmp_path / name, *extra)
    assert r.returncode == 0, r.stderr
    plan = plan_of(LLAMA_TINY)
    want = b"".join(bytes(c) for c in formats.artifact(plan, "hf", options=Options(max_shard_size=9000)).chunks())
    assert (tmp_path / name).read_bytes() == want


@pytest.mark.parametrize("doc, extra, message", [
    ({**LLAMA_TINY, "format": "safetensors"}, [],
     "only the hf format writes one (the document asks for 'safetensors')"),
    (LLAMA_TINY, ["--format", "npz"], "only the hf format writes one (the document asks for 'npz')"),
    (MLP, [], "format: the hf format writes a Hugging Face model folder"),
    ({**LLAMA_TINY, "tensors": ["lm_head.weight"]}, [], "tensors: the hf format writes the whole model folder"),
    ({**LLAMA_TINY, "max_shard_size": "big"}, [], "max_shard_size: must be a number of bytes"),
])
def test_what_a_folder_refuses_is_a_usage_error(tmp_path, doc, extra, message):
    r = run("generate", request(tmp_path, doc), "-o", f"{tmp_path}/out/", *extra)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "out").exists()


def test_the_files_of_an_earlier_folder_go(tmp_path):
    """A model.safetensors beside a new index would be what transformers loads: it goes, as do shards of
    another split; files that are not an hf folder's stay."""
    out = tmp_path / "model"
    assert run("generate", request(tmp_path, LLAMA_TINY), "-o", f"{out}/").returncode == 0
    (out / "README.md").write_text("mine")
    (out / "model-00001-of-00007.safetensors").write_text("stale")
    r = run("generate", request(tmp_path, {**LLAMA_TINY, "max_shard_size": 20_000}), "-o", f"{out}/")
    assert r.returncode == 0, r.stderr
    assert "removed the earlier folder's model-00001-of-00007.safetensors, model.safetensors" in r.stderr
    assert files_in(out) == {**tar_members(LLAMA_TINY, Options(max_shard_size=20_000)), "README.md": b"mine"}
    r = run("generate", request(tmp_path, LLAMA_TINY), "-o", f"{out}/")
    assert r.returncode == 0, r.stderr
    assert files_in(out) == {**tar_members(LLAMA_TINY, Options()), "README.md": b"mine"}


def test_a_folder_that_cannot_be_made_fails_with_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    r = run("generate", request(tmp_path, LLAMA_TINY), "-o", f"{tmp_path}/file/model/")
    assert r.returncode == 1 and r.stderr.startswith("weightinit: generate failed: cannot create the folder")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch, capsys):
    """The disk fills up while the third file is written: nothing of the new folder is left, and the
    earlier folder's files are untouched."""
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("earlier")
    calls, real = [], os.pwrite

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)

    monkeypatch.setattr(os, "pwrite", failing)
    code = cli.main(["generate", str(request(tmp_path, {**LLAMA_TINY, "max_shard_size": 20_000})), "-o", f"{out}/"])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err and err.count("\n") == 1, err
    assert files_in(out) == {"config.json": b"earlier"}
