"""``timm_vit``: timm's Vision Transformer initialization, ``init_weights_vit_timm`` (timm 1.0.31,
``VisionTransformer.init_weights`` in its default mode; Dosovitskiy et al. 2021).

    every nn.Linear weight (q/k/v, projections, MLP, head)   trunc_normal_(std=0.02), a = -2, b = 2
    pos_embed (role position_embedding)                       trunc_normal_(std=0.02), a = -2, b = 2
    cls_token, register tokens (role cls_token)               N(0, (1e-6)^2)
    patch_embed's Conv2d (and any other conv)                 left as constructed: U[+-1/sqrt(fan_in)],
                                                              its bias too (kaiming_uniform_(a=sqrt(5)))
    nn.Linear biases 0; LayerNorm 1 and 0

timm's ``trunc_normal_`` takes absolute bounds: a = -2, b = 2 around a std of 0.02 cut at 100 standard
deviations, so the draw is in effect the untruncated N(0, 0.02^2) (the reported variance is 0.02^2
to 15 digits); reading them as +-2 sigma (Keras's or JAX's truncation) would shrink the std by 12%.
The 0.02 comes from BERT and the JAX ViT code; the tokens start near zero so that the class token
and the learned positions add almost nothing until training shapes them. ``init_weights_vit_timm``
touches only ``nn.Linear`` modules (and modules with their own ``init_weights``): the patch embedding is
a Conv2d and keeps PyTorch's constructor draw. Roles: ``patch_embedding``, ``cls_token`` and
``position_embedding`` mark ViT's own tensors in a ``layers`` document. Checked against
``timm.models.vision_transformer.VisionTransformer`` (tests/core/recipes/test_timm_vit.py).
"""

from __future__ import annotations

from ..errors import SpecError
from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use

PAPER = ("Dosovitskiy et al. 2021, An Image is Worth 16x16 Words (ICLR), arXiv:2010.11929; timm 1.0.31 "
         "vision_transformer.init_weights_vit_timm")
#: timm's trunc_normal_ defaults: absolute cuts, not multiples of std.
LOW, HIGH = -2.0, 2.0
#: The layer types timm builds as nn.Linear (our attention layer unpacks timm's qkv Linear).
LINEAR = ("dense", "attention", "hf_conv1d")
CONVS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def choose(t, layer, spec: dict, model: Model):
    std, token_std = spec["std"], spec["token_std"]
    trunc = use("truncated_normal", mean=0.0, std=std, low=LOW, high=HIGH)
    effect = "in effect untruncated" if HIGH / std >= 10 else "the reported std is the truncated one"
    cut = f"trunc_normal_(std={std:g}, a={LOW:g}, b={HIGH:g}) (absolute bounds: {HIGH / std:g} std, {effect})"
    if t.layer_type in CONVS:
        why = (f"timm_vit: init_weights_vit_timm leaves a Conv (PatchEmbed's proj) as constructed: PyTorch's "
               f"kaiming_uniform_(a=sqrt(5)) = U[+-1/sqrt(fan_in)], fan_in {t.fan_in}, for the {t.role}")
        return use("uniform_fan_in"), why
    if t.role == "bias":
        return use("zeros"), "timm_vit: nn.Linear biases zeros_"
    if t.layer_role == "cls_token":
        return use("normal", std=token_std), f"timm_vit: cls_token / reg_token normal_(std={token_std:g})"
    if t.layer_role == "position_embedding":
        return trunc, f"timm_vit: pos_embed {cut}"
    if t.layer_type in LINEAR:
        return trunc, f"timm_vit: nn.Linear weight {cut}"
    raise SpecError("scheme", f"timm_vit initializes a ViT's Linear, Conv, LayerNorm and token tensors; {t.name} "
                              f"(a {t.layer_type} layer{f' with role {t.layer_role}' if t.layer_role else ''}) is none "
                              "of these (give a raw tensor the role cls_token or position_embedding)")


RECIPE = Recipe(
    Scheme("timm_vit", "timm's ViT (init_weights_vit_timm): every Linear weight trunc_normal_(std 0.02) with timm's "
           "absolute bounds [-2, 2]; pos_embed (role position_embedding) the same; cls/register tokens (role "
           "cls_token) N(0, 1e-6^2); the patch embedding's Conv (any conv) left as PyTorch constructs it, "
           "U[+-1/sqrt(fan_in)] for weight and bias; Linear biases 0; norms 1 and 0",
           "TN(0, 0.02^2, [-2, 2]); tokens N(0, 1e-6^2); conv U[+-1/sqrt(fan_in)]",
           r"\mathcal{N}(0, 0.02^2)\,\big|\,[-2, 2];\ \text{tokens } \mathcal{N}(0, 10^{-12})",
           (Param("std", "number", 0.02, minimum=0.0, maximum=1.0, exclusive_minimum=True,
                  doc="std of the Linear weights and of pos_embed (cut at timm's absolute [-2, 2])"),
            Param("token_std", "number", 1e-6, minimum=0.0, maximum=1.0, exclusive_minimum=True,
                  doc="std of the class and register tokens")),
           None, family="recipe", paper=PAPER),
    choose,
    reference="timm 1.0.31 VisionTransformer.init_weights (tests/core/recipes/test_timm_vit.py)",
)
