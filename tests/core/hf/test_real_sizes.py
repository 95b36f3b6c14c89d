"""Real published configs at full size, against transformers' own model of them on the meta device
(nothing allocated, nothing drawn): the tensors save_pretrained writes (names, shapes, dtypes and
order, tied parameters left out) and the parameter count are ours.
"""

from __future__ import annotations

import pytest

from service.core.hf import FAMILIES
from service.core.layers import TRANSFORMERS

from tests.helpers import report_of

from .configs import PUBLISHED_PARAMETERS, REAL
from .reference import meta_model, planned, saved_state, torch_dtype_name, transformers


def test_the_transformers_release_the_families_follow():
    """The checks below are about one release: the one the report names."""
    assert transformers.__version__ == TRANSFORMERS


@pytest.mark.parametrize("name", REAL)
def test_tensors_are_what_save_pretrained_writes(name):
    config = REAL[name]
    model = meta_model(config)
    theirs = [(k, tuple(v.shape), torch_dtype_name(v.dtype)) for k, v in saved_state(model).items()]
    ours, plan = planned({"architecture": {"hf_config": config}})
    assert ours == theirs
    assert plan.total_elements == model.num_parameters()
    assert report_of(plan)["totals"]["parameters"] == model.num_parameters()


@pytest.mark.parametrize("name", PUBLISHED_PARAMETERS)
def test_parameter_counts_are_the_published_ones(name):
    """The configs above are the real ones: their models have the published sizes."""
    _, plan = planned({"architecture": {"hf_config": REAL[name]}})
    assert plan.total_elements == PUBLISHED_PARAMETERS[name]


@pytest.mark.parametrize("name", [n for n, c in REAL.items() if c.get("tie_word_embeddings", True)
                                  and c["architectures"][0] != FAMILIES[c["model_type"]].base])
def test_tied_checkpoints_leave_the_tied_head_out(name):
    """Qwen2-0.5B, Gemma, GPT-2 and BERT share the output projection with the token embedding: the
    model has it, the folder does not."""
    model = meta_model(REAL[name])
    tied = set(dict(model.named_parameters(remove_duplicate=False))) - set(saved_state(model))
    _, plan = planned({"architecture": {"hf_config": REAL[name]}})
    assert tied and tied == set(plan.request.hf.tied)
