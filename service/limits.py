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

BINARY_FORMATS = ("npy", "npz", "safetensors")


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
    if fmt in BINARY_FORMATS:
        return "max_binary_elements", config.max_binary_elements
    return "max_json_elements", config.max_json_elements


def check_elements(plan: Plan, fmt: str, config: Config) -> None:
    """The selected tensors' element count against the format's limit."""
    name, allowed = element_limit(fmt, config)
    requested = plan.total_elements
    if requested > allowed:
        hint = " (binary formats allow more: ask for npz or safetensors)" if fmt == "json" else ""
        raise SpecError("architecture.layers" if plan.document.get("tensors") is None else "tensors",
                        f"{requested} elements requested in {fmt}; at most {allowed} are allowed{hint}",
                        limit=name, requested=requested, allowed=allowed)


def check_torch_replay(plan: Plan, config: Config) -> None:
    """``rng: torch`` replays PyTorch's sequential stream up to the last selected tensor."""
    if plan.document.get("rng") != "torch" or not plan.selected:
        return
    last = max(t.position for t in plan.selected)
    requested = sum(t.size for t in plan.tensors if t.position <= last)
    if requested > config.max_torch_elements:
        raise SpecError("rng", f"rng torch replays {requested} values (every tensor up to the last selected one); "
                               f"at most {config.max_torch_elements} are allowed",
                        limit="max_torch_elements", requested=requested, allowed=config.max_torch_elements)
