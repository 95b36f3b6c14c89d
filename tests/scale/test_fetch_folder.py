"""``weightinit fetch URL REQUEST.json -o DIR/``: the hf format's tar fetched in proven Range parts, its
every header and the folder's files checked, then unpacked into DIR: the same files as ``weightinit
generate -o DIR/``. A corrupted part, a tar that is not the server's (a strange member, an index that
disagrees with the shards) fails with one line and exit 1 and leaves nothing in DIR; unpacking needs
the folder plus its largest file on the disk, not two folders."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from service import fetch as fetch_module
from service.fetch import FetchError
from service.output import hf, tar
from service.output.artifact import segment_chunks
from service.output.options import Options
from service.output.report import Report
from tests.helpers import LLAMA_TINY, plan_of

from .test_fetch import Fake, cli, failed_with, through

SHARDED = {**LLAMA_TINY, "max_shard_size": 20_000}
#: About 4.5 MiB of float32 in five shards of at most 1.05 MB: the full-disk test's folder.
WIDE = {"architecture": {"hf_config": {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 2048, "hidden_size": 128,
    "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4}},
    "max_shard_size": 1_050_000, "seed": 2}


def request_file(tmp_path: Path, doc: dict, name: str) -> Path:
    p = tmp_path / f"{name}.request.json"
    p.write_text(json.dumps(doc))
    return p


def generated_folder(tmp_path: Path, doc: dict, name: str) -> dict[str, bytes]:
    out = tmp_path / name
    r = cli("generate", request_file(tmp_path, doc, name), "-o", f"{out}/")
    assert r.returncode == 0, r.stderr
    return files_in(out)


def files_in(directory: Path) -> dict[str, bytes]:
    """Every entry of ``directory`` (hidden ones included: a partial file or a tar left behind shows)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def fetch_into(url: str, tmp_path: Path, doc: dict, out: Path, *extra):
    return cli("fetch", url, request_file(tmp_path, doc, "fetch"), "-o", f"{out}/", "--no-progress", *extra)


@pytest.mark.parametrize("doc, extra", [
    (SHARDED, ["--parallel", "3", "--part-size", "5000"]),     # parts across every header and shard
    (LLAMA_TINY, ["--parallel", "3"]),                           # one model.safetensors, one part
    ({**SHARDED, "metadata": "minimal", "format": "hf"}, ["--parallel", "2", "--part-size", "4096"]),
    ({**WIDE, "dtype": "bfloat16"}, ["--parallel", "3", "--part-size", "300000"]),
])
def test_fetch_folder_is_byte_identical_to_generate(server, tmp_path, doc, extra):
    expected = generated_folder(tmp_path, doc, "expected")
    out = tmp_path / "fetched"
    r = fetch_into(server.url, tmp_path, doc, out, *extra)
    assert r.returncode == 0, r.stderr
    assert files_in(out) == expected      # nothing else: no tar, no partial file
    assert "every tar header and shard header" in r.stderr and "Content-Digest sha-256 of every part" in r.stderr
    assert sorted(r.stderr.split("files: ")[1].rstrip(")\n").split(", ")) == list(expected)


def test_fetch_folder_replaces_an_earlier_folder(server, tmp_path):
    out = tmp_path / "model"
    assert fetch_into(server.url, tmp_path, SHARDED, out, "--part-size", "8192").returncode == 0
    (out / "notes.txt").write_text("mine")
    r = fetch_into(server.url, tmp_path, LLAMA_TINY, out)
    assert r.returncode == 0, r.stderr
    assert "removed the earlier folder's model-00001-of-00002.safetensors, model-00002-of-00002.safetensors, " \
           "model.safetensors.index.json" in r.stderr
    assert files_in(out) == {**generated_folder(tmp_path, LLAMA_TINY, "expected"), "notes.txt": b"mine"}


def test_a_corrupted_part_fails_and_leaves_the_folder_as_it_was(server, tmp_path):
    out = tmp_path / "model"  # an existing folder: -o model takes it as one
    out.mkdir()
    (out / "config.json").write_text("earlier")
    r, _, proxy = through(server, "flip", tmp_path, SHARDED, "model", "--parallel", "2", "--part-size", "8192")
    assert proxy.flipped == 1
    failed_with(r, "differs from the part's Content-Digest")
    assert files_in(out) == {"config.json": b"earlier"}


def test_usage_errors(server, tmp_path):
    req = request_file(tmp_path, {**SHARDED, "format": "safetensors"}, "r")
    r = cli("fetch", server.url, req, "-o", f"{tmp_path}/out/")
    assert r.returncode == 2 and "only the hf format writes one" in r.stderr
    r = cli("fetch", server.url, req, "-o", f"{tmp_path}/out/", "--format", "npz")
    assert r.returncode == 2 and "only the hf format writes one (asked for 'npz')" in r.stderr
    r = cli("fetch", server.url, request_file(tmp_path, {**SHARDED, "max_shard_size": -1}, "bad"), "-o",
            f"{tmp_path}/out/")
    assert r.returncode == 2 and "max_shard_size: must be between 1" in r.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ tars that are not the server's
def folder_files() -> list[tar.File]:
    return hf.folder(Report(plan_of(LLAMA_TINY)), Options(max_shard_size=20_000))


def tar_bytes(files: list[tar.File], root: str = "weightinit-seed0-0123456789abcdef") -> bytes:
    return b"".join(bytes(c) for c in segment_chunks(tar.archive(root, files), parallel=False))


def renamed(files, old: str, new: str) -> list[tar.File]:
    return [tar.File(new if f.name == old else f.name, f.segments) for f in files]


def with_index(files, edit) -> list[tar.File]:
    """``files`` with the index's JSON edited by ``edit`` (and written as save_pretrained writes it)."""
    out = []
    for f in files:
        if f.name == hf.INDEX:
            index = json.loads(f.segments[0])
            edit(index)
            f = tar.File(f.name, ((json.dumps(index, indent=2, sort_keys=True) + "\n").encode(),))
        out.append(f)
    return out


def _move(index):
    first = min(index["weight_map"])
    index["weight_map"][first] = "model-00002-of-00002.safetensors" \
        if index["weight_map"][first].startswith("model-00001") else "model-00001-of-00002.safetensors"


def _tarfile_written(files) -> bytes:
    """The same files as tarfile writes them with another mtime: a valid tar, not the server's headers."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for f in files:
            data = b"".join(bytes(c) for c in segment_chunks(f.segments, parallel=False))
            i = tarfile.TarInfo(f"root/{f.name}")
            i.size, i.mtime, i.mode = len(data), 1, 0o644
            t.addfile(i, io.BytesIO(data))
    return buf.getvalue()


def _symlink_member() -> bytes:
    data = bytearray(tar_bytes(folder_files()))
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            if m.name.endswith("config.json"):
                m.type, m.linkname, m.size = tarfile.SYMTYPE, "/etc/passwd", 0
                dst.addfile(m)
            else:
                dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    return buf.getvalue()


def _shifted(shard: tar.File) -> tar.File:
    """The shard with its first tensor's offsets starting at 4: they no longer tile its data."""
    head = shard.segments[0].replace(b'"data_offsets":[0,', b'"data_offsets":[4,')
    return tar.File(shard.name, (head, *shard.segments[1:]))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


def _reheader(data: bytes, at: int, value: bytes) -> bytes:
    """``value`` written at byte ``at`` of a header, its checksum made right again: a valid tar whose
    header is not the one the server writes."""
    block = at - at % tar.BLOCK
    head = bytearray(data[block:block + tar.BLOCK])
    head[at - block:at - block + len(value)] = value
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    return data[:block] + bytes(head) + data[block + tar.BLOCK:]


FILES = folder_files()
GOOD = tar_bytes(FILES)
#: (id, the tar, what the one line says)
BAD_TARS = [
    ("unexpected member", lambda: tar_bytes(FILES + [tar.File("run.sh", (b"#!/bin/sh\n",))]), "unexpected member"),
    ("path outside the folder", lambda: tar_bytes(renamed(FILES, "config.json", "../config.json")),
     "unexpected member"),
    ("a file twice", lambda: tar_bytes(FILES[:1] + FILES), "unexpected member"),
    ("a symlink", _symlink_member, "unexpected member"),
    ("no top folder", lambda: _tarfile_written(FILES), "top folder"),
    ("index disagrees with the headers", lambda: tar_bytes(with_index(FILES, _move)), "weight_map differs"),
    ("index total_size", lambda: tar_bytes(with_index(FILES, lambda i: i["metadata"].update(total_size=1))),
     "total_size 1"),
    ("index not JSON", lambda: tar_bytes(FILES[:1] + [tar.File(hf.INDEX, (b"{nope",))] + FILES[2:]),
     "malformed model.safetensors.index.json"),
    ("index without weight_map", lambda: tar_bytes(FILES[:1] + [tar.File(hf.INDEX, (b"{}",))] + FILES[2:]),
     "KeyError"),
    ("no index", lambda: tar_bytes(FILES[:1] + FILES[2:]), "not an hf folder"),
    ("no config.json", lambda: tar_bytes(FILES[1:]), "not an hf folder"),
    ("shards out of order", lambda: tar_bytes(FILES[:2] + FILES[:1:-1]), "not an hf folder"),
    ("a shard missing", lambda: tar_bytes(FILES[:3]), "not an hf folder"),
    ("shards of another count", lambda: tar_bytes(
        renamed(renamed(FILES, "model-00001-of-00002.safetensors", "model-00001-of-00003.safetensors"),
                "model-00002-of-00002.safetensors", "model-00002-of-00003.safetensors")), "not an hf folder"),
    ("config.json not an object", lambda: tar_bytes([tar.File("config.json", (b"[1]\n",))] + FILES[1:]),
     "malformed config.json"),
    ("a shard's header does not tile", lambda: tar_bytes(FILES[:2] + [_shifted(FILES[2])] + FILES[3:]),
     "model-00001-of-00002.safetensors: malformed safetensors header"),
    ("a header field", lambda: _reheader(GOOD, 512 + 108, b"0000001"),  # config.json's uid: 1
     "differ from the ones the server writes"),
    ("checksum broken", lambda: _flip(GOOD, 512 + 3), "malformed hf tar"),
    ("a padding byte", lambda: _flip(GOOD, 512 + 512 + FILES[0].size), "differ from the ones the server writes"),
    ("an end block byte", lambda: _flip(GOOD, len(GOOD) - 1), "differ from the ones the server writes"),
    ("trailing bytes", lambda: GOOD + bytes(tar.RECORD), "92160 bytes, not 102400"),
    ("cut short", lambda: GOOD[:-tar.RECORD], "malformed hf tar"),
    ("not a tar", lambda: b"PK\x03\x04" + bytes(2000), "malformed hf tar"),
]


def test_the_good_tar_passes():
    assert len(GOOD) == 92160 and len(FILES) == 4
    assert fetch_module._check_hf(io.BytesIO(GOOD), len(GOOD)).startswith("hf folder: 4 files")


@pytest.mark.parametrize("make, message", [c[1:] for c in BAD_TARS], ids=[c[0] for c in BAD_TARS])
def test_a_tar_that_is_not_the_servers_is_refused(make, message):
    data = make()
    with pytest.raises(FetchError, match=message.replace("(", r"\(")):
        fetch_module._check_hf(io.BytesIO(data), len(data))


@pytest.mark.parametrize("case", ["unexpected member", "index disagrees with the headers", "a header field"])
def test_the_cli_fails_with_one_line_and_leaves_nothing(tmp_path, case):
    """Served with every part proven (a fake service): the tar's own checks fail the fetch."""
    make, message = next(c[1:] for c in BAD_TARS if c[0] == case)
    fake = Fake(make(), "hf")
    out = tmp_path / "model"
    try:
        r = fetch_into(fake.url, tmp_path, LLAMA_TINY, out, "--part-size", "10000", "--timeout", "20")
    finally:
        fake.close()
    failed_with(r, message)
    assert files_in(out) == {}


@pytest.mark.parametrize("plan, message", [
    (b'{"totals": {"bytes": {"safetensors": 10}}}', "takes an architecture.hf_config document without `tensors`"),
    (b'{"totals": {"bytes": {"hf": null}}}', "headers would pass the server's max_hf_header_bytes"),
])
def test_a_plan_without_an_hf_size_says_why(tmp_path, plan, message):
    fake = Fake(GOOD, "hf", plan=plan)
    try:
        r = fetch_into(fake.url, tmp_path, LLAMA_TINY, tmp_path / "model", "--timeout", "20")
    finally:
        fake.close()
    failed_with(r, message)
    assert not (tmp_path / "model").exists()


# ------------------------------------------------------------------------------ the disk
def test_unpacking_needs_the_folder_and_one_file_more_not_two_folders(server, tmp_path):
    """A 7 MiB tmpfs for a 4.5 MiB folder of five shards: the tar and a second copy of the folder would
    not fit (9 MiB), the folder and its largest file do (5.5 MiB). Mounting needs root, which CI has."""
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (CI does)"
    expected = generated_folder(tmp_path, WIDE, "expected")
    total, largest = sum(map(len, expected.values())), max(map(len, expected.values()))
    disk = tmp_path / "disk"
    disk.mkdir()
    size = 7 << 20
    assert total + largest + (1 << 20) < size < 2 * total and len(expected) == 7
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], check=True, timeout=30)
    try:
        r = fetch_into(server.url, tmp_path, WIDE, disk / "model", "--parallel", "2")
        assert r.returncode == 0, r.stderr
        assert files_in(disk / "model") == expected
        (disk / "filler").write_bytes(bytes(size - total - largest // 2))   # now a second folder cannot fit
        r = fetch_into(server.url, tmp_path, {**WIDE, "seed": 3}, disk / "other", "--parallel", "2")
        failed_with(r, "No space left on device")
        assert files_in(disk / "other") == {}
    finally:
        subprocess.run(["umount", str(disk)], check=True, timeout=30)
