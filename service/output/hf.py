"""The ``hf`` format: the folder transformers' ``save_pretrained`` writes, as an uncompressed tar.

For a plan of an ``architecture.hf_config`` document (``core.hf``), the folder holds::

    config.json                          the request's config, its dtype key saying the tensors' dtype
    model.safetensors                    every tensor, when they fit in one shard; else
    model.safetensors.index.json         {"metadata": {"total_parameters", "total_size"}, "weight_map"}
    model-00001-of-0000N.safetensors     the shards, split as save_pretrained splits them

Shards are split in state_dict order (huggingface_hub ``split_state_dict_into_shards_factory``): a
tensor that would take the current shard past ``max_shard_size`` starts the next one; a tensor
larger than the limit alone is a shard of its own, placed before the shard being filled. Within a
file the tensors are in name order, and its header says ``{"format": "pt"}`` (plus the report with
``metadata: full``): with ``metadata: minimal`` a shard is byte for byte what the safetensors library
writes for its tensors. The index and config.json are ``json.dumps(..., indent=2, sort_keys=True) +
"\\n"``, as save_pretrained writes them.

The tar (``output.tar``: pax, mtime 0, mode 0644, owner 0) holds the folder in one directory named
like the artifact, so ``tar xf`` makes one folder. Every byte is known without the bytes before it:
the tar is segments (``Artifact.segments``), streamed in bounded memory, its length known before a
value is drawn, and served in Range parts.
"""

from __future__ import annotations

import json

from ..core import hf
from ..core.errors import SpecError
from ..core.plan import Plan
from .artifact import Artifact, filename, segment_chunks, segment_size
from .options import DEFAULT, Options
from .report import Report
from .safetensors import file_segments
from .tar import File, archive

MEDIA_TYPE = "application/x-tar"
EXTENSION = ".tar"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
#: The most bytes of headers (config.json, the index, every shard's safetensors header) one folder may
#: hold, all together (413 ``max_hf_header_bytes``, fixed): they are built and held in memory before a
#: value is drawn, and with ``metadata: full`` every shard carries the whole report, so a small document
#: (a large config, a tiny ``max_shard_size``) could otherwise ask for gigabytes of them.
MAX_HEADER_BYTES = 1 << 26
#: The files an hf folder may hold: what ``weightinit fetch`` unpacks and ``generate -o DIR/`` replaces.
FILE_NAMES = r"config\.json|model\.safetensors|model\.safetensors\.index\.json|model-[0-9]{5}-of-[0-9]{5}\.safetensors"


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
        index = {"metadata": {"total_parameters": plan.total_elements,
                              "total_size": sum(t.nbytes for t in plan.selected)},
                 "weight_map": {t.name: name for name, shard in zip(names, shards) for t in shard}}
        files.append(File(INDEX, ((json.dumps(index, indent=2, sort_keys=True) + "\n").encode(),)))
    held = sum(f.size for f in files)
    for name, shard in zip(names, shards):
        files.append(File(name, file_segments(sorted(shard, key=lambda t: t.name), text)))
        held += len(files[-1].segments[0])
        if held > MAX_HEADER_BYTES:
            raise _too_many_headers(len(shards), len(files[-1].segments[0]), text is not None)
    return files


def _too_many_headers(shards: int, one: int, full: bool) -> SpecError:
    if full:
        return SpecError("metadata", f"{shards} shards, each header embedding the report ({one} bytes), need more "
                                     f"than {MAX_HEADER_BYTES} bytes of headers together: ask for metadata: minimal "
                                     f"(or a larger max_shard_size)", limit="max_hf_header_bytes",
                         allowed=MAX_HEADER_BYTES)
    return SpecError("max_shard_size", f"{shards} shards need more than {MAX_HEADER_BYTES} bytes of headers "
                                       f"together: ask for a larger max_shard_size", limit="max_hf_header_bytes",
                     allowed=MAX_HEADER_BYTES)


def check(plan: Plan) -> None:
    """The hf format writes a whole model folder: an hf_config document, every tensor."""
    if plan.request.hf is None:
        raise SpecError("format", "the hf format writes a Hugging Face model folder: it needs architecture.hf_config")
    if plan.request.tensors is not None:
        raise SpecError("tensors", "the hf format writes the whole model folder (every tensor): tensors must be null")


def applies(plan: Plan) -> bool:
    """Whether a plan can be written as a folder (``check`` says why not)."""
    try:
        check(plan)
    except SpecError:
        return False
    return True


def size(report: Report, options: Options = DEFAULT) -> int | None:
    """The tar's exact length; None when its headers would pass ``MAX_HEADER_BYTES`` (the plan stays
    answerable; ``/v1/weights`` answers the 413 that says what to change)."""
    try:
        files = folder(report, options)
    except SpecError as e:
        if e.limit is None:
            raise
        return None
    return sum(segment_size(s) for s in archive(_root(report.plan), files))


def _root(plan: Plan) -> str:
    return filename(plan, "")


def encode(report: Report, *, parallel: bool = True, options: Options = DEFAULT) -> Artifact:
    segments = archive(_root(report.plan), folder(report, options))
    return Artifact("hf", MEDIA_TYPE, sum(segment_size(s) for s in segments),
                    lambda: segment_chunks(segments, parallel), filename(report.plan, EXTENSION), segments=segments)
