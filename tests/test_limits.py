"""service/limits.py: limits decided from the document and the plan, which allocate nothing."""

from __future__ import annotations

import tracemalloc

import pytest

from service import limits
from service.config import load_config
from service.core import SpecError
from tests.helpers import plan_of


def test_layer_count_is_checked_on_the_raw_document():
    cfg = load_config({"max_layers": 2}, environ={})
    limits.check_document({"architecture": {"layers": [{}, {}]}}, cfg)
    with pytest.raises(SpecError) as e:
        limits.check_document({"architecture": {"layers": [{}, {}, {}]}}, cfg)
    assert (e.value.limit, e.value.requested, e.value.allowed) == ("max_layers", 3, 2)
    for odd in (None, [], {"architecture": None}, {"architecture": {"layers": "x"}}):
        limits.check_document(odd, cfg)  # structure errors are the schema's to report


@pytest.mark.parametrize("fmt, limit", [("json", "max_json_elements"), ("npy", "max_binary_elements"),
                                        ("npz", "max_binary_elements"), ("safetensors", "max_binary_elements")])
def test_element_limits_per_format(fmt, limit):
    cfg = load_config(environ={})
    allowed = getattr(cfg, limit)
    assert allowed % (1 << 20) == 0
    exactly = {"type": "tensor", "name": "a", "shape": [allowed >> 20, 1 << 20]}  # no dimension beyond 2^31
    ok = plan_of({"architecture": {"layers": [exactly]}})
    limits.check_elements(ok, fmt, cfg)
    over = plan_of({"architecture": {"layers": [exactly, {"type": "tensor", "name": "b", "shape": [1]}]}})
    with pytest.raises(SpecError) as e:
        limits.check_elements(over, fmt, cfg)
    assert (e.value.limit, e.value.requested, e.value.allowed) == (limit, allowed + 1, allowed)


def test_a_huge_request_is_refused_without_allocating():
    cfg = load_config(environ={})
    tracemalloc.start()
    try:
        plan = plan_of({"architecture": {"layers": [{"type": "tensor", "shape": [1 << 20, 1 << 20]}]}, "dtype": "float64"})
        with pytest.raises(SpecError):
            limits.check_elements(plan, "safetensors", cfg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20  # an 8 TiB tensor planned and refused in a few KiB
