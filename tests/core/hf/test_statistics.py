"""Per tensor, our hf_default values against transformers' own: ``torch.manual_seed(0);
from_config(config)`` draws the same tensors, and a two-sample Kolmogorov-Smirnov test does not tell
the two samples apart (alpha 1e-3, fixed seeds: deterministic). What transformers sets to a constant
(biases 0, norms 1, Gemma's norms 0) is exactly that constant in ours, and the padding row is zero in both.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats

from tests.helpers import plan_of, report_of

from .configs import MEDIUM
from .reference import numpy_state, our_values, seeded_model

#: The KS test's level: a tensor fails when its p-value is below it.
ALPHA = 1e-3
#: Every drawn tensor has at least this many elements (a std off by 10% fails at this size).
MIN_ELEMENTS = 4096
SEED = 0


@functools.cache
def drawn(name: str):
    """(our plan, our values, transformers' values) of a MEDIUM config."""
    plan = plan_of({"architecture": {"hf_config": MEDIUM[name]}, "seed": SEED})
    return plan, our_values(plan), numpy_state(seeded_model(MEDIUM[name], SEED))


def disagreement(t, a: np.ndarray, b: np.ndarray) -> str | None:
    """How our values ``a`` of tensor ``t`` disagree with transformers' ``b``, or None: a constant of
    transformers' is exactly ours, a padding row is zero in both, and the other values pass the KS test."""
    if np.all(b == b.flat[0]):
        return None if np.array_equal(a, b) else f"{t.name}: {np.unique(a)[:4]} != the constant {b.flat[0]}"
    rows = list(t.spec.zero_rows)
    if any(np.any(a[r]) or np.any(b[r]) for r in rows):
        return f"{t.name}: a padding row of {rows} is not zero"
    p = stats.ks_2samp(np.delete(a, rows, axis=0).ravel(), np.delete(b, rows, axis=0).ravel()).pvalue
    return f"{t.name}: KS p = {p:.2g}; std {a.std():.4g} (ours) vs {b.std():.4g}" if p < ALPHA else None


@pytest.mark.parametrize("name", MEDIUM)
def test_every_tensor_follows_transformers(name):
    plan, ours, theirs = drawn(name)
    assert list(ours) == list(theirs)
    assert all(t.size >= MIN_ELEMENTS for t in plan.selected if np.ptp(theirs[t.name]) > 0)
    failures = [d for t in plan.selected if (d := disagreement(t, ours[t.name], theirs[t.name]))]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", [n for n in MEDIUM if MEDIUM[n]["model_type"] != "gpt2"])  # GPT-2: no padding_idx
def test_the_padding_row_is_zero_in_both(name):
    plan, ours, theirs = drawn(name)
    embedding = plan.selected[0]
    config = MEDIUM[name]
    pad = config.get("pad_token_id", 0) % config["vocab_size"]
    assert embedding.spec.zero_rows == (pad,)
    assert not ours[embedding.name][pad].any() and not theirs[embedding.name][pad].any()
    assert ours[embedding.name][pad - 1].all()


def test_gpt2_scales_its_residual_projections():
    """c_proj: N(0, (initializer_range / sqrt(2 n_layer))^2), reported so, and the KS test has the teeth
    to tell it from the unscaled N(0, initializer_range^2) of the other Conv1D weights."""
    config = MEDIUM["gpt2"]
    plan, ours, theirs = drawn("gpt2")
    std = config["initializer_range"] / math.sqrt(2 * config["n_layer"])
    report = {t["name"]: t for t in report_of(plan)["tensors"]}
    projections = [n for n in report if n.endswith("c_proj.weight")]
    assert len(projections) == 2 * config["n_layer"]
    for name in projections:
        assert report[name]["scheme"]["std"] == pytest.approx(std)
        assert report[name]["scheme"]["chosen_by"] == "hf_default"
        assert "GPT2PreTrainedModel._init_weights, the scaled residual projection" in report[name]["scheme"]["reason"]
        unscaled = theirs[name.replace("c_proj", "c_fc").replace("attn.c_fc", "attn.c_attn")]
        assert stats.ks_2samp(ours[name].ravel(), unscaled.ravel()).pvalue < ALPHA
    assert report["transformer.h.0.mlp.c_fc.weight"]["scheme"]["std"] == config["initializer_range"]


def test_the_ks_test_tells_another_initializer_range():
    """The same model drawn with initializer_range 0.02 instead of the config's 0.03 fails the check."""
    config = MEDIUM["llama"]
    plan = plan_of({"architecture": {"hf_config": {**config, "initializer_range": 0.02}}, "seed": SEED})
    _, _, theirs = drawn("llama")
    t = plan.selected[1]
    assert stats.ks_2samp(our_values(plan)[t.name].ravel(), theirs[t.name].ravel()).pvalue < ALPHA
