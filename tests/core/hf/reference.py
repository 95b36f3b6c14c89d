"""The real thing, for the hf tests: transformers (and torch, CPU) build the model a config describes,
and weightinit writes the folder of the same config.

transformers is a test-only dependency (scripts/test-deps.sh installs the release the families follow,
``service.core.layers.TRANSFORMERS``); without it the modules importing this one are skipped with that
reason. Everything here is deterministic: torch draws after ``torch.manual_seed``, weightinit from the
request's seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (CPU, test-only) is not installed: bash scripts/test-deps.sh")
transformers = pytest.importorskip(
    "transformers", reason="transformers (test-only) is not installed: bash scripts/test-deps.sh installs 5.23.0")

from transformers.modeling_utils import remove_tied_weights_from_state_dict  # noqa: E402

from service.core.dtypes import DTYPES, as_float  # noqa: E402
from service.core.plan import build_plan  # noqa: E402
from service.document import load_weights_request  # noqa: E402
from service.output import hf  # noqa: E402
from service.output.artifact import segment_chunks  # noqa: E402
from service.output.report import Report  # noqa: E402

from tests.helpers import plan_of  # noqa: E402


def config_of(hf_config: dict):
    """transformers' config object of a config.json object (as from_pretrained reads config.json)."""
    return transformers.AutoConfig.for_model(**hf_config)


def model_class(hf_config: dict):
    """The class ``architectures[0]`` names (the head)."""
    return getattr(transformers, hf_config["architectures"][0])


def meta_model(hf_config: dict):
    """The model on the meta device: shapes and dtypes, no memory, nothing drawn."""
    with torch.device("meta"):
        return model_class(hf_config)._from_config(config_of(hf_config))


def seeded_model(hf_config: dict, seed: int):
    """The model as ``torch.manual_seed(seed); from_config(config)`` initializes it, on the CPU."""
    torch.manual_seed(seed)
    return model_class(hf_config)._from_config(config_of(hf_config))


def saved_state(model) -> dict:
    """The tensors ``save_pretrained`` writes, in its order: ``state_dict()`` without the tied parameters
    (transformers' own removal)."""
    return remove_tied_weights_from_state_dict(dict(model.state_dict()), model)


def numpy_state(model) -> dict[str, np.ndarray]:
    """The saved tensors as float64 arrays."""
    with torch.no_grad():
        return {k: v.detach().to(torch.float64).numpy() for k, v in saved_state(model).items()}


def our_values(plan) -> dict[str, np.ndarray]:
    """Every tensor of a plan, drawn, as float64 arrays in their stored shape."""
    return {t.name: as_float(t.generate(), DTYPES[t.dtype.name]).astype(np.float64).reshape(t.shape)
            for t in plan.selected}


def write_folder(document: dict, directory: Path) -> Path:
    """The hf folder of a ``/v1/weights`` document (its ``max_shard_size`` and ``metadata`` read), its files
    as ``weightinit generate REQUEST.json -o DIR/`` writes them (``output.hf.folder``)."""
    request, _, options = load_weights_request(document)
    folder = directory / "model"
    folder.mkdir()
    for f in hf.folder(Report(build_plan(request)), options):
        with open(folder / f.name, "wb") as out:
            for chunk in segment_chunks(f.segments, False):
                out.write(chunk)
    return folder


def planned(document: dict):
    """(name, shape, dtype) of every tensor of our plan, in order; and the plan."""
    plan = plan_of(document)
    return [(t.name, tuple(t.shape), t.dtype.name) for t in plan.selected], plan


def torch_dtype_name(dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``: weightinit's name of a torch dtype."""
    return str(dtype).removeprefix("torch.")
