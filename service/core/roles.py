"""What a layer does in its model: the roles initialization recipes read.

Deep residual and transformer models are initialized per role, not per layer type: GPT-2 scales the
output projection of every residual branch by 1/sqrt(2 n_layer), muP scales hidden weights with
width but not embeddings or the readout, Fixup zeroes the last layer of each branch. A layer's role
says which of these it is. For an ``architecture.hf_config`` the model family gives every layer its
role (``core.hf``); in a ``layers`` document a layer may say it with the optional ``role`` field;
norm layers are ``norm`` either way. The plan reports each tensor's ``layer_role`` (and
``residual: true`` for a residual branch's output) whenever its layer has a role.

The recipes (``core.recipes``) read the roles; a tensor's own ``role`` (weight, bias, norm_weight,
...) still says which tensor of its layer it is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str
    doc: str
    #: The output projection of a residual branch: what depth-scaled recipes scale, Fixup zeroes.
    residual: bool = False
    #: The layer types it applies to (None: any type with weights).
    types: tuple[str, ...] | None = None


_EMBEDDINGS = ("embedding", "tensor")
_NORMS = ("layernorm", "rmsnorm", "batchnorm", "groupnorm")

ROLES: dict[str, Role] = {r.name: r for r in (
    Role("embedding", "the token embedding table (tied to the readout in many language models)", types=_EMBEDDINGS),
    Role("position_embedding", "learned absolute positions (GPT-2's wpe, BERT's, ViT's pos_embed)", types=_EMBEDDINGS),
    Role("token_type_embedding", "BERT's segment embedding", types=_EMBEDDINGS),
    Role("patch_embedding", "a vision transformer's patchifying projection (a conv or dense over patches)"),
    Role("cls_token", "a learned prefix vector (ViT's class token, register tokens)", types=("tensor",)),
    Role("input", "the first layer reading the data (muP's input weights: one dimension grows with width)"),
    Role("hidden", "a hidden layer of an MLP or a CNN (both dimensions grow with width)"),
    Role("attn_qkv", "an attention's query or key projection (or q, k and v packed in one, GPT-2's c_attn)"),
    Role("attn_v", "an attention's value projection (DeepNet and T-Fixup scale it, not q and k)"),
    Role("attn_out", "an attention's output projection, the end of a residual branch", residual=True),
    Role("mlp_in", "an MLP's up (and gate) projection inside a residual block"),
    Role("mlp_out", "an MLP's down projection, the end of a residual branch", residual=True),
    Role("residual_out", "the last layer of any other residual branch (a ResNet block's last conv)", residual=True),
    Role("residual_gain", "a scalar gain at the end of a residual branch (SkipInit's alpha)", types=("tensor",)),
    Role("readout", "the output projection to logits (an LM head, a classifier)"),
    Role("pooler", "a pooling projection over the sequence (BERT's pooler)"),
    Role("norm", "a normalization layer's scale and shift", types=_NORMS),
)}
NAMES: tuple[str, ...] = tuple(ROLES)


def for_type(type_name: str, norm: bool) -> tuple[str, ...]:
    """The roles a layer of this type may take: a norm layer's is ``norm``; the others, every role whose
    ``types`` admit the type (``norm`` excepted)."""
    if norm:
        return ("norm",)
    return tuple(r.name for r in ROLES.values()
                 if r.name != "norm" and (r.types is None or type_name in r.types))


def is_residual(role: str | None) -> bool:
    return role is not None and ROLES[role].residual
