"""``nanogpt``: GPT-2's rule as Karpathy's nanoGPT (model.py) draws it.

    W ~ N(0, std^2)                         every nn.Linear and nn.Embedding weight (std 0.02)
    W ~ N(0, (std / sqrt(2 n_layer))^2)     each ``c_proj.weight`` (roles attn_out, mlp_out)
    b = 0;  LayerNorm 1 and 0

The values' law is ``gpt2``'s (the reasoning and the paper are there); what this recipe adds is the
order nanoGPT draws them in, which fixes the values under ``rng: "torch"``::

    torch.manual_seed(seed)
    model = GPT(config)        # constructors draw in module order: wte, wpe, h[i].(ln_1, attn.c_attn,
                               # attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj), ln_f, then lm_head;
                               # lm_head.weight is wte.weight (tied)
      self.apply(self._init_weights)        # children before parents: every Linear and Embedding
                                            # N(0, 0.02^2) in module order, biases 0; the tied
                                            # weight twice: at wte, then at lm_head (the values kept)
      for pn, p in self.named_parameters():
          if pn.endswith('c_proj.weight'):  # re-drawn, in order
              torch.nn.init.normal_(p, mean=0.0, std=0.02/math.sqrt(2 * config.n_layer))

The document is a ``layers`` document naming nanoGPT's modules (``transformer.h.0.attn.c_proj``, ...):
they are ``nn.Linear`` (dense: weights (out, in)), ``nn.Embedding`` and LayerNorm, the engine's own
types, where a gpt2 ``hf_config`` would be transformers' transposed ``Conv1D`` with other constructor
draws (and an hf_config has no torch replay). The branches are marked by ``role`` (attn_out, mlp_out;
n_layer is the number of attn_out layers); ``lm_head`` is left out, tied to the layer with role
``embedding`` (``tie_embeddings``). Checked bit for bit against a model with nanoGPT's structure and
init calls (tests/core/recipes/test_nanogpt.py).
"""

from __future__ import annotations

from ..errors import SpecError
from ..roles import is_residual
from ..scheme_entry import Param, Scheme
from ..torch import program
from . import gpt2
from .base import Recipe

NAME = "nanogpt"


def _tied_embedding(spec: dict, ordered: list) -> tuple | None:
    """(the embedding layer, its weight) lm_head is tied to, or None (tie_embeddings false)."""
    if not spec["tie_embeddings"]:
        return None
    embeddings = [(layer, ts) for layer, ts in ordered if layer.role == "embedding"]
    readouts = [layer.name for layer, _ in ordered if layer.role == "readout"]
    if readouts:
        raise SpecError("scheme.tie_embeddings", f"nanoGPT's lm_head is tied to the token embedding and left out of "
                                                 f"the document, but layer {readouts[0]!r} has role readout: drop it, "
                                                 "or set tie_embeddings false")
    if len(embeddings) != 1 or embeddings[0][0].type != "embedding" or not embeddings[0][1]:
        raise SpecError("scheme.tie_embeddings", f"nanoGPT ties lm_head to one embedding layer with role embedding "
                                                 f"(transformer.wte); the document has {len(embeddings)} layers with "
                                                 "that role: mark one, or set tie_embeddings false")
    layer, ts = embeddings[0]
    return layer, ts[0]


def torch_program(spec: dict, ordered: list) -> list:
    """nanoGPT's draws (the module docstring), over the document's layers in order. A tensor another
    scheme chose (a layer's own) gets its own call where _init_weights would draw it."""
    tied = _tied_embedding(spec, ordered)
    steps: list = [program.Construct(layer) for layer, _ in ordered]
    if tied is not None:
        e = tied[0].params
        steps.append(program.Module("Linear", (("bias", False), ("in_features", e["embedding_dim"]),
                                               ("out_features", e["num_embeddings"])), tied[1].size))
    redrawn = [t for _, ts in ordered for t in ts
               if t.chosen_by == NAME and t.spec.role != "bias" and is_residual(t.spec.layer_role)]
    later = {t.name for t in redrawn} | ({tied[1].name} if tied else set())
    for _, ts in ordered:  # self.apply(self._init_weights)
        for t in ts:
            if t.chosen_by == "torch_default":
                continue
            keep = t.name not in later
            if t.chosen_by == NAME and t.spec.role != "bias":
                steps.append(program.normal(t, spec["std"], keep=keep))
            else:
                steps.append(program.Draw(t, keep=keep))
    if tied is not None:
        steps.append(program.Draw(tied[1]))  # lm_head's _init_weights: the tied weight's values
    return steps + [program.Draw(t) for t in redrawn]  # the c_proj.weight re-draw


RECIPE = Recipe(
    Scheme(NAME, "nanoGPT (Karpathy's model.py): GPT-2's rule, every weight N(0, std^2) (std 0.02), each residual "
           "branch's output projection (c_proj; role attn_out, mlp_out) N(0, (std / sqrt(2 n_layer))^2), biases 0, "
           "norms 1 and 0; under rng torch drawn in nanoGPT's order (constructors, _init_weights over the modules, "
           "the tied lm_head, then the c_proj re-draw), bit for bit",
           "N(0, 0.02^2); c_proj N(0, (0.02/sqrt(2 n_layer))^2); nanoGPT's draw order",
           r"\mathcal{N}(0, 0.02^2);\ \text{c\_proj } \mathcal{N}(0, (0.02/\sqrt{2 n_{layer}})^2)",
           (*gpt2.PARAMS,
            Param("tie_embeddings", "boolean", True,
                  doc="rng torch: lm_head (left out of the document) is tied to the layer with role embedding, "
                      "as nanoGPT ties it: its nn.Linear is constructed and drawn after the last layer, and those "
                      "draws are the embedding's values")),
           None, family="recipe", paper=gpt2.PAPER + "; Karpathy, nanoGPT model.py"),
    gpt2.rule(NAME),
    reference="a model with nanoGPT's structure and init calls, in torch 2.13 (tests/core/recipes/test_nanogpt.py)",
    torch_program=torch_program,
)
