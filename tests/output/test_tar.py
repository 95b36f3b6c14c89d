"""The tar writer (service/output/tar.py): byte for byte what Python's tarfile writes in PAX format for
the same members (mtime 0, mode 0644 / 0755, owner 0), members of 8 GiB and more included (checked on
their headers alone: nothing that size is written), and readable by tarfile and GNU tar."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass

import pytest

from service.output import tar
from service.output.artifact import Artifact, segment_size


def tarfile_bytes(root: str, files: dict[str, bytes]) -> bytes:
    """What ``tarfile`` (PAX) writes for folder ``root`` holding ``files``, with weightinit's fixed fields."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.addfile(info(root, None))
        for name, data in files.items():
            t.addfile(info(f"{root}/{name}", len(data)), io.BytesIO(data))
    return buf.getvalue()


def info(name: str, size: int | None) -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.mtime, i.uid, i.gid, i.uname, i.gname = 0, 0, 0, "", ""
    if size is None:
        i.type, i.mode = tarfile.DIRTYPE, 0o755
    else:
        i.size, i.mode = size, 0o644
    return i


def joined(segments) -> bytes:
    assert all(isinstance(s, bytes) for s in segments)
    return b"".join(segments)


FOLDERS = {
    "one small file": {"config.json": b"{}\n"},
    "empty file": {"a": b""},
    "a block exactly": {"a": b"x" * 512, "b": b"y" * 1024},
    "a byte past a block": {"a": b"x" * 513},
    "over two records": {"a": bytes(range(256)) * 40, "b": b"z" * 9727},   # ends on the 10240-byte record
    "many files": {f"model-{i + 1:05d}-of-00012.safetensors": bytes([i]) * (1000 * i + 7) for i in range(12)},
    "a 100-byte name": {"n" * (100 - len("weightinit-seed1-0123456789abcdef/")): b"1"},
}


@pytest.mark.parametrize("files", FOLDERS.values(), ids=FOLDERS.keys())
def test_archive_equals_tarfile_pax(files):
    root = "weightinit-seed1-0123456789abcdef"
    data = joined(tar.archive(root, [tar.File(n, (b,)) for n, b in files.items()]))
    assert data == tarfile_bytes(root, files)
    assert len(data) % tar.RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        members = t.getmembers()
        assert [m.name for m in members] == [root] + [f"{root}/{n}" for n in files]
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
        assert [m.mode for m in members] == [0o755] + [0o644] * len(files)
        for n, b in files.items():
            assert t.extractfile(f"{root}/{n}").read() == b


@pytest.mark.parametrize("size", [tar.USTAR_MAX_SIZE, tar.USTAR_MAX_SIZE + 1, 9 * 2 ** 30 + 3, 2 ** 50, 10 ** 15 + 1])
def test_member_header_equals_tarfile_at_any_size(size):
    """Below 8 GiB a ustar header; from 8 GiB a pax header whose size record carries the size."""
    header = tar.member_header("root/model.safetensors", size)
    assert header == info("root/model.safetensors", size).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert len(header) == (512 if size <= tar.USTAR_MAX_SIZE else 1536)
    if size > tar.USTAR_MAX_SIZE:
        assert header[156:157] == b"x" and f" size={size}\n".encode() in header[512:1024]


@dataclass(frozen=True)
class Huge:
    """A stand-in for a tensor: its size only (nothing is drawn: only the bytes around it are read)."""

    nbytes: int


def test_a_member_over_8_gib_is_laid_out_as_tarfile_reads_it(tmp_path):
    """An archive holding a 9 GiB + 5 byte file: every byte around the file's data (the headers, the
    padding, the next member, the end blocks) comes out of ``byte_range`` without drawing a value, and
    a sparse copy of the archive lists in tarfile and GNU tar with the right sizes and offsets."""
    big = 9 * 2 ** 30 + 5
    segments = tar.archive("r", [tar.File("config.json", (b"{}\n",)),
                                 tar.File("model.safetensors", (b"H" * 8, Huge(big))),
                                 tar.File("after.json", (b"[]\n",))])
    length = sum(segment_size(s) for s in segments)
    artifact = Artifact("hf", "application/x-tar", length, lambda: iter(()), "r.tar", segments=segments)
    data_at = 512 + 512 + 512 + 1536 + 8             # folder, config.json + its block, the pax + ustar header, "H" * 8
    tail_at = data_at + big
    tail = b"".join(bytes(p) for p in artifact.byte_range(tail_at, length))
    assert tail == tar.padding(8 + big) + tar.member_header("r/after.json", 3) + b"[]\n" + tar.padding(3) + \
        tar.end(tail_at + len(tar.padding(8 + big)) + 1024)
    assert length % tar.RECORD == 0
    path = tmp_path / "sparse.tar"
    with open(path, "wb") as f:
        f.write(b"".join(bytes(p) for p in artifact.byte_range(0, data_at)))
        f.seek(tail_at)
        f.write(tail)
    assert path.stat().st_size == length
    with tarfile.open(path) as t:
        sizes = {m.name: (m.size, m.offset_data) for m in t.getmembers()}
    assert sizes["r/model.safetensors"] == (big + 8, data_at - 8)
    assert sizes["r/after.json"][0] == 3
    listing = subprocess.run([gnu_tar(), "tvf", str(path)], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert f" {big + 8} 1970-01-01 00:00 r/model.safetensors" in listing.stdout


def gnu_tar() -> str:
    exe = shutil.which("tar")
    assert exe, "GNU tar is part of every Debian system (scripts/test-deps.sh relies on it)"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    assert "GNU tar" in version, version
    return exe


def test_gnu_tar_lists_and_extracts_it(tmp_path):
    files = FOLDERS["many files"]
    (tmp_path / "a.tar").write_bytes(joined(tar.archive("folder", [tar.File(n, (b,)) for n, b in files.items()])))
    listing = subprocess.run([gnu_tar(), "tf", "a.tar"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    assert listing.stdout.splitlines() == ["folder/"] + [f"folder/{n}" for n in files]
    r = subprocess.run([gnu_tar(), "xf", "a.tar"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for n, b in files.items():
        assert (tmp_path / "folder" / n).read_bytes() == b
        assert (tmp_path / "folder" / n).stat().st_mode & 0o777 == 0o644


#: sha-256 of a folder header, a small and a 1 TiB member's headers and an end: the bytes of this module.
PINNED = "9c2c84a99b6a854b0eee94b69284d03fd063835ae50b509b0244a5bc70816320"


def test_header_bytes_are_pinned():
    """The bytes depend on this module alone, whatever the Python version: pinned here."""
    got = hashlib.sha256(tar.folder_header("r") + tar.member_header("r/config.json", 3)
                         + tar.member_header("r/model.safetensors", 2 ** 40) + tar.end(3584)).hexdigest()
    assert got == PINNED



@pytest.mark.parametrize("name", ["n" * 101, "ünïcode"])
def test_names_outside_ustar_are_refused(name):
    with pytest.raises((ValueError, UnicodeEncodeError)):
        tar.member_header(name, 1)
