"""rng "torch" over HTTP: same values as the engine, theory carries torch_call/exact, 413 above
max_torch_elements."""

import io

import numpy as np
import pytest

from service import create_app
from tests.helpers import plan_of

DOC = {"architecture": {"layers": [{"type": "dense", "name": "fc1", "in_features": 64, "out_features": 32},
                                   {"type": "lstm", "name": "rnn", "input_size": 32, "hidden_size": 16}]},
       "scheme": "he_normal", "rng": "torch", "seed": 2 ** 40 + 5}


def test_torch_rng_npz_equals_engine():
    client = create_app().test_client()
    r = client.post("/v1/weights", json={**DOC, "format": "npz"})
    assert r.status_code == 200
    z = np.load(io.BytesIO(r.data), allow_pickle=False)
    for t in plan_of(DOC).selected:
        assert np.array_equal(z[t.name], t.generate()), t.name


def test_torch_rng_plan_reports_the_call_and_exactness():
    client = create_app().test_client()
    r = client.post("/v1/plan", json=DOC)
    tensors = {t["name"]: t for t in r.get_json()["tensors"]}
    assert tensors["fc1.weight"]["torch_call"].startswith("torch.nn.init.kaiming_normal_(")
    assert tensors["fc1.weight"]["exact"] is True
    assert r.get_json()["engine"]["bit_generator"].startswith("MT19937")


def test_torch_rng_limit_is_413_naming_it():
    client = create_app({"max_torch_elements": 1000}).test_client()
    r = client.post("/v1/weights", json={**DOC, "tensors": ["fc1.weight"], "format": "npy"})
    assert r.status_code == 413
    p = r.get_json()
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_torch_elements", 64 * 32, 1000)
    # Only what lies before the last selected tensor counts: the bias alone costs its weight too.
    r = client.post("/v1/weights", json={**DOC, "tensors": ["rnn.bias_hh"], "format": "npy"})
    assert r.get_json()["requested"] == 64 * 32 + 32 + 64 * 32 + 64 * 16 + 64 + 64


#: (layer, scheme) that torch.nn.init refuses for the layer's tensor -> the field and what PyTorch raises.
#: Found by schemathesis: a 1-D norm scale under a fan-based scheme was a 500 in the middle of the answer.
REFUSED = [
    ({"type": "groupnorm", "name": "g", "num_groups": 1, "num_channels": 11, "scheme": "he_normal"},
     "architecture.layers.0.scheme", "torch.nn.init.kaiming_normal_", "fewer than 2 dimensions"),
    ({"type": "groupnorm", "name": "g", "num_groups": 1, "num_channels": 11, "scheme": "auto", "activation": "elu"},
     "architecture.layers.0.scheme", "torch.nn.init.kaiming_normal_", "fewer than 2 dimensions"),
    ({"type": "layernorm", "name": "g", "normalized_shape": [11], "scheme": "xavier_uniform"},
     "architecture.layers.0.scheme", "torch.nn.init.xavier_uniform_", "fewer than 2 dimensions"),
    ({"type": "batchnorm", "name": "g", "num_features": 5, "scheme": "orthogonal"},
     "architecture.layers.0.scheme", None, None),
    ({"type": "dense", "name": "g", "in_features": 3, "out_features": 4, "bias": "he_uniform"},
     "architecture.layers.0.bias", "torch.nn.init.kaiming_uniform_", "fewer than 2 dimensions"),
]


@pytest.mark.parametrize("layer, field, call, raised", REFUSED)
@pytest.mark.parametrize("path, fmt", [("/v1/plan", None), ("/v1/weights", "json"), ("/v1/weights", "npz")])
def test_a_tensor_pytorch_refuses_is_a_422_naming_the_field(layer, field, call, raised, path, fmt):
    client = create_app().test_client()
    doc = {"rng": "torch", "seed": 3, "architecture": {"layers": [layer]}, **({"format": fmt} if fmt else {})}
    r = client.post(path, json=doc)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    problem = r.get_json()
    assert list(problem["errors"]) == [field]
    message = problem["errors"][field][0]
    assert "g.weight" in message or "g.bias" in message
    if call:  # refused by the torch replay, with PyTorch's own words
        assert call in message and raised in message, message
