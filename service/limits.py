"""Configured request limits, checked before any array is allocated (HTTP 413).

Pure Python (no Flask): counts come from the raw document and from the Plan, which
allocates nothing. Each violation is a ``SpecError`` with ``limit`` (the configuration
field, e.g. ``max_json_elements``), ``requested`` and ``allowed`` set, which the HTTP
layer turns into a 413 problem naming all three.
"""

from __future__ import annotations

from .config import Config
from .core.errors import SpecError
from .core.plan import Plan
from .output import formats


def check_document(doc, config: Config) -> None:
    """Limits visible in the raw document (before validation does any per-layer work)."""
    if not isinstance(doc, dict):
        return
    arch = doc.get("architecture")
    layers = arch.get("layers") if isinstance(arch, dict) else None
    if isinstance(layers, list) and len(layers) > config.max_layers:
        raise SpecError("architecture.layers", f"{len(layers)} layers requested; at most {config.max_layers} are allowed",
                        limit="max_layers", requested=len(layers), allowed=config.max_layers)


def element_limit(fmt: str, config: Config) -> tuple[str, int]:
    """(limit name, allowed elements) for an output format."""
    name = formats.get(fmt).element_limit
    return name, getattr(config, name)


def check_elements(plan: Plan, fmt: str, config: Config) -> None:
    """The selected tensors' element count against the format's limit."""
    name, allowed = element_limit(fmt, config)
    requested = plan.total_elements
    if requested > allowed:
        hint = " (binary formats allow more: ask for npz or safetensors)" if fmt == "json" else ""
        raise SpecError("architecture.layers" if plan.request.tensors is None else "tensors",
                        f"{requested} elements requested in {fmt}; at most {allowed} are allowed{hint}",
                        limit=name, requested=requested, allowed=allowed)


def check_torch_replay(plan: Plan, config: Config) -> None:
    """``rng: torch`` replays PyTorch's sequential stream up to the last selected tensor."""
    if plan.request.rng != "torch" or not plan.selected:
        return
    requested = plan.selected[0].replay.recipe_values  # a recipe's own draw order (nanogpt's)
    what = f"{plan.request.scheme['name']}'s draws up to the last that sets a selected tensor"
    if requested is None:
        last = max(t.position for t in plan.selected)
        requested = sum(t.size for t in plan.tensors if t.position <= last)
        what = "every tensor up to the last selected one"
    if requested > config.max_torch_elements:
        raise SpecError("rng", f"rng torch replays {requested} values ({what}); "
                               f"at most {config.max_torch_elements} are allowed",
                        limit="max_torch_elements", requested=requested, allowed=config.max_torch_elements)


def check_matrix_work(tensors, config: Config, what: str = "the request") -> None:
    """The whole-matrix tensors among ``tensors`` (those a response or a Range part draws) against
    ``max_matrix_flops`` (all of them together) and ``max_matrix_bytes`` (the largest one: they are
    drawn one after another)."""
    works = [(t, w) for t in tensors if (w := t.matrix_work()) is not None]
    if not works:
        return
    flops = sum(w.flops for _, w in works)
    if flops > config.max_matrix_flops:
        raise SpecError("scheme", f"{what} draws {len(works)} whole-matrix tensor(s) ({works[0][0].distribution.name} "
                                  f"{works[0][0].name}{', ...' if len(works) > 1 else ''}) costing {flops:,} "
                                  f"floating-point operations; at most max_matrix_flops = {config.max_matrix_flops:,} "
                                  "are allowed (select fewer tensors with `tensors`, or fetch the artifact in Range "
                                  "parts)", limit="max_matrix_flops", requested=flops, allowed=config.max_matrix_flops)
    t, w = max(works, key=lambda tw: tw[1].bytes)
    if w.bytes > config.max_matrix_bytes:
        raise SpecError("scheme", f"drawing {t.distribution.name} {t.name} (shape {list(t.shape)}) as a whole matrix "
                                  f"needs {w.bytes:,} bytes of working memory; at most max_matrix_bytes = "
                                  f"{config.max_matrix_bytes:,} are allowed", limit="max_matrix_bytes",
                        requested=w.bytes, allowed=config.max_matrix_bytes)


def drawn_tensors(plan: Plan) -> list:
    """The tensors a whole response draws: the selected ones, and with ``rng: torch`` every tensor up
    to the last selected one (PyTorch's stream is replayed in order)."""
    if plan.request.rng == "torch" and plan.selected:
        last = max(t.position for t in plan.selected)
        return [t for t in plan.tensors if t.position <= last]
    return plan.selected

