"""The output formats: one registry entry each, which everything else reads.

Each ``Format`` says its media type (and any other media type that selects it), its file
extension, whether it is binary (and so held to ``max_binary_elements``, not
``max_json_elements``), whether its bytes can be cut into HTTP ``Range`` parts (every byte known
without the ones before it), its exact size before a value is drawn, and its encoder. The HTTP API
(negotiation, Range, limits), the CLI (extensions), ``weightinit fetch`` (which formats it can
fetch in parts) and the report's ``totals`` all read it. Adding a format: docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..core.errors import SpecError
from ..core.plan import Plan
from . import hf, jsonenc, npy, npz, safetensors
from .artifact import Artifact
from .options import DEFAULT, Options
from .report import Report


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    binary: bool
    ranges: bool                                    # its bytes can be cut into Range parts
    size: Callable[..., int | None] | None          # (report, options): exact length before drawing, or None
    encoder: Callable[..., Artifact]                # (report, parallel=, options=)
    also_accepted: tuple[str, ...] = ()             # other media types that select it
    #: Whether a plan can be written in this format at all (hf: a Hugging Face config, every tensor),
    #: and the SpecError that says why not.
    applies: Callable[[Plan], bool] = lambda plan: True
    check: Callable[[Plan], None] = lambda plan: None

    @property
    def element_limit(self) -> str:
        """The configuration field that bounds the values of one response in this format."""
        return "max_binary_elements" if self.binary else "max_json_elements"


#: In the server's order of preference (``Accept: */*`` gets the first).
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("json", jsonenc.MEDIA_TYPE, jsonenc.EXTENSION, binary=False, ranges=False, size=None,
           encoder=lambda report, parallel, options: jsonenc.encode(report, document(report, options))),
    Format("npy", npy.MEDIA_TYPE, npy.EXTENSION, binary=True, ranges=True, size=lambda report, options: npy.size(report),
           encoder=lambda report, parallel, options: npy.encode(report, parallel=parallel)),
    Format("npz", npz.MEDIA_TYPE, npz.EXTENSION, binary=True, ranges=False, size=lambda report, options: npz.size(report),
           encoder=lambda report, parallel, options: npz.encode(report, parallel=parallel)),
    Format("safetensors", safetensors.MEDIA_TYPE, safetensors.EXTENSION, binary=True, ranges=True,
           size=safetensors.size, encoder=safetensors.encode, also_accepted=("application/octet-stream",)),
    Format("hf", hf.MEDIA_TYPE, hf.EXTENSION, binary=True, ranges=True, size=hf.size, encoder=hf.encode,
           applies=hf.applies, check=hf.check),
)}
NAMES: tuple[str, ...] = tuple(FORMATS)
#: Media type -> format, in the server's order of preference.
ACCEPTED: dict[str, str] = {**{f.media_type: f.name for f in FORMATS.values()},
                            **{m: f.name for f in FORMATS.values() for m in f.also_accepted}}


def get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise SpecError("format", f"must be one of {', '.join(NAMES)}, got {name!r}") from None


def for_filename(path: str) -> Format | None:
    """The format a file name's extension says, or None."""
    return next((f for f in FORMATS.values() if path.endswith(f.extension)), None)


def totals(report: Report, options: Options = DEFAULT) -> dict:
    """The report's ``totals``: the selected tensors, their values, and the exact size of every format
    whose size is known before drawing and that applies to the plan (npy: null unless exactly one
    tensor is selected; hf only for a Hugging Face config)."""
    plan = report.plan
    return {"tensors": len(plan.selected), "parameters": plan.total_elements,
            "bytes": {f.name: f.size(report, options) for f in FORMATS.values()
                      if f.size is not None and f.applies(plan)}}


def document(report: Report, options: Options = DEFAULT) -> dict:
    """The report with its totals: what ``/v1/plan`` and ``weightinit plan`` answer, and the head of
    the JSON weights."""
    return report.document(totals(report, options))


def encode(report: Report, fmt: str, *, parallel: bool = True, options: Options = DEFAULT) -> Artifact:
    """The artifact of ``report``'s plan in format ``fmt`` (lazy: nothing is drawn yet)."""
    f = get(fmt)
    f.check(report.plan)
    return f.encoder(report, parallel=parallel, options=options)


def artifact(plan: Plan, fmt: str, *, parallel: bool = True, options: Options = DEFAULT) -> Artifact:
    """``encode`` for a plan on its own (its report made here)."""
    return encode(report=Report(plan), fmt=fmt, parallel=parallel, options=options)
