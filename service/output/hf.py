"""The ``hf`` format: the folder transformers' ``save_pretrained`` writes, as an uncompressed tar.

For a plan of an ``architecture.hf_config`` document (``core.hf``), the folder holds::

    config.json                          the request's config, its dtype key saying the tensors' dtype
    model.safetensors                    every tensor, when they fit in one shard; else
    model-00001-of-0000N.safetensors     the shards, split as save_pretrained splits them
    model.safetensors.index.json         {"metadata": {"total_parameters", "total_size"}, "weight_map"}

Shards are split in state_dict order (huggingface_hub ``split_state_dict_into_shards_factory``): a
tensor that would take the current shard past ``max_shard_size`` starts the next one; a tensor
larger than the limit alone is a shard of its own, placed before the shard being filled. Within a
file the tensors are in name order, as the safetensors library writes them, and its header says
``{"format": "pt"}`` (plus the report with ``metadata: full``). The index is ``json.dumps(index,
indent=2, sort_keys=True) + "\\n"``, as save_pretrained writes it.

The tar (POSIX pax, as Python's ``tarfile`` writes it: mtime 0, mode 0644, owner 0) holds the folder
under one directory named like the artifact, so ``tar xf`` makes one folder. Every byte is known
without the bytes before it: the tar is segments (``Artifact.segments``), streamed in bounded memory,
its length known before a value is drawn, and served in Range parts.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass

from ..core import hf
from ..core.errors import SpecError
from ..core.plan import Plan
from .artifact import Artifact, filename, segment_chunks, segment_size
from .options import DEFAULT, Options
from .report import Report
from .safetensors import file_segments

MEDIA_TYPE = "application/x-tar"
EXTENSION = ".tar"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
BLOCK = 512


@dataclass(frozen=True)
class File:
    """One file of the folder: its name and its bytes as segments."""

    name: str
    segments: tuple

    @property
    def size(self) -> int:
        return sum(segment_size(s) for s in self.segments)


def split(tensors: list, max_shard_size: int) -> list[list]:
    """The shards of ``tensors`` (in state_dict order), as save_pretrained splits them."""
    shards, current, current_size = [], [], 0
    for t in tensors:
        if t.nbytes > max_shard_size:
            shards.append([t])
            continue
        if current_size + t.nbytes > max_shard_size:
            shards.append(current)
            current, current_size = [], 0
        current.append(t)
        current_size += t.nbytes
    if current:
        shards.append(current)
    return shards


def shard_name(i: int, n: int) -> str:
    return SINGLE if n == 1 else f"model-{i + 1:05d}-of-{n:05d}.safetensors"


def folder(report: Report, options: Options = DEFAULT) -> list[File]:
    """The files of the folder, in the order the tar holds them."""
    plan = report.plan
    check(plan)
    text = report.text if options.metadata == "full" else None
    shards = split(plan.selected, options.max_shard_size)
    config = json.dumps(hf.saved_config(plan.request.hf, plan.request.dtype), indent=2, sort_keys=True) + "\n"
    files = [File("config.json", (config.encode(),))]
    names = [shard_name(i, len(shards)) for i in range(len(shards))]
    if len(shards) > 1:
        index = {"metadata": {"total_parameters": plan.total_elements, "total_size": sum(t.nbytes for t in plan.selected)},
                 "weight_map": {t.name: name for name, shard in zip(names, shards) for t in shard}}
        files.append(File(INDEX, ((json.dumps(index, indent=2, sort_keys=True) + "\n").encode(),)))
    for name, shard in zip(names, shards):
        files.append(File(name, file_segments(sorted(shard, key=lambda t: t.name), text)))
    return files


def check(plan: Plan) -> None:
    """The hf format writes a whole model folder: an hf_config document, every tensor."""
    if plan.request.hf is None:
        raise SpecError("format", "the hf format writes a Hugging Face model folder: it needs architecture.hf_config")
    if plan.request.tensors is not None:
        raise SpecError("tensors", "the hf format writes the whole model folder (every tensor): tensors must be null")


def _member(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _directory(name: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = tarfile.DIRTYPE, 0, 0o755, 0, 0, "", ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def tar_segments(root: str, files: list[File]) -> tuple:
    """The tar of ``files`` under directory ``root`` as segments, adjacent ``bytes`` joined."""
    out: list = []
    pending = io.BytesIO()
    pending.write(_directory(root + "/"))
    for f in files:
        pending.write(_member(f"{root}/{f.name}", f.size))
        for seg in f.segments:
            if isinstance(seg, bytes):
                pending.write(seg)
            else:
                if pending.tell():
                    out.append(pending.getvalue())
                    pending = io.BytesIO()
                out.append(seg)
        pending.write(b"\0" * (-f.size % BLOCK))
    pending.write(b"\0" * (2 * BLOCK))  # the end-of-archive marker
    out.append(pending.getvalue())
    return tuple(out)


def applies(plan: Plan) -> bool:
    """Whether a plan can be written as a folder (``check`` says why not)."""
    return plan.request.hf is not None and plan.request.tensors is None


def size(report: Report, options: Options = DEFAULT) -> int:
    """The tar's exact length."""
    return sum(segment_size(s) for s in tar_segments(_root(report.plan), folder(report, options)))


def _root(plan: Plan) -> str:
    return filename(plan, "")


def encode(report: Report, *, parallel: bool = True, options: Options = DEFAULT) -> Artifact:
    segments = tar_segments(_root(report.plan), folder(report, options))
    return Artifact("hf", MEDIA_TYPE, sum(segment_size(s) for s in segments), lambda: segment_chunks(segments, parallel),
                    filename(report.plan, EXTENSION), segments=segments)
