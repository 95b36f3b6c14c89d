"""What a Hugging Face model family is: the config keys that shape its tensors, its head classes, and
the layers (of ``core.layers``) its ``save_pretrained`` writes, in ``state_dict()`` order.

A family turns a ``config.json`` object into ``Layer``s named as transformers names the parameters
(``model.layers.0.self_attn.q_proj`` + ``.weight``), so that every tensor is an ordinary tensor of an
ordinary layer type: its fans, schemes, theory, streams and encoders are the engine's. What is
family-specific rides on ``Layer.init``: the config's ``initializer_range``, GPT-2's scaled residual
projections, Gemma's RMSNorm that starts at 0. Tied parameters (an ``lm_head`` tied to the input
embedding) are left out, as ``save_pretrained`` leaves them out. The families follow transformers
``TRANSFORMERS`` and were checked against it (tests/core/hf): names, shapes, order and parameter
counts of real-size configs built on the meta device, and tiny ones loaded and run.

A key the family reads but the config leaves out takes transformers' default for that family (its
``Config`` class's); the keys that set the model's size have none here: they are required. A key may
be null only where that ``Config`` class takes null (transformers 5 configs are strict dataclasses
that reject null where they declare ``int``, ``float`` or ``bool``), and null then means what it means
there (``num_key_value_heads``: one per attention head); elsewhere null is a 422, not a folder
transformers refuses to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..activations import Activation
from ..fields import MISSING, Boolean, Field, Integer, Number, Rule
from ..layers.base import TRANSFORMERS, Layer

#: Sizes in a config.json: integers 1 .. 2^31.
SIZE = Integer(1, 1 << 31)
#: At most this many blocks (num_hidden_layers, n_layer): 8x the deepest published model; bounds the
#: layers built from one config before any limit of the service is checked.
MAX_BLOCKS = 1024


def size(name: str, *, required: bool = True, default=None, nullable: bool = False, doc: str = "") -> Field:
    """A size key of the config: required, or optional with transformers' default; ``nullable`` where
    the family's ``Config`` class takes null (``doc`` says what null means)."""
    if required:
        return Field(name, SIZE, required=True, doc=doc)
    # no default of None: the boundary would take null for it (marshmallow's allow_none follows load_default=None)
    return Field(name, SIZE, nullable=nullable, default=MISSING if default is None else default, doc=doc)


def blocks(name: str) -> Field:
    return Field(name, Integer(1, MAX_BLOCKS), required=True, doc=f"the number of blocks (at most {MAX_BLOCKS})")


def flag(name: str, default: bool, doc: str = "") -> Field:
    """A bool key (transformers' configs take true or false, never null)."""
    return Field(name, Boolean(), default=default, doc=doc)


def initializer_range() -> Field:
    return Field("initializer_range", Number(0, 1e3),
                 doc="std of hf_default's N(0, std^2), default 0.02; transformers reads `initializer_range or 0.02`")


def pad_token_id(default: int | None) -> Field:
    return Field("pad_token_id", Integer(-(1 << 31), (1 << 31) - 1), nullable=True, default=default,
                 doc="the token embedding's padding row, zero (negative: counted from the end, as nn.Embedding does)")


def tie_word_embeddings(default: bool) -> Field:
    return flag("tie_word_embeddings", default,
                doc="the output projection shares the input embedding (save_pretrained leaves it out)")


def padding_row(v: dict, vocab_key: str = "vocab_size") -> int | None:
    """The embedding row ``pad_token_id`` names, as nn.Embedding resolves it (negative: from the end)."""
    pad = v.get("pad_token_id")
    return None if pad is None else pad % v[vocab_key] if pad < 0 else pad


def pad_inside(vocab_key: str = "vocab_size") -> Rule:
    def check(v: dict):
        pad, n = v.get("pad_token_id"), v.get(vocab_key)
        if pad is not None and n is not None and not -n <= pad < n:
            return "pad_token_id", f"pad_token_id ({pad}) must be a row of the token embedding: -{vocab_key} ({-n}) .. {n - 1}"
        return None
    return Rule(check, "pad_token_id is a row of the token embedding")


def divides(part: str, whole: str, *, what: str) -> Rule:
    """A rule: ``whole`` is a multiple of ``part`` (transformers fails later, in the forward pass or its
    constructor, when it is not)."""
    def check(v: dict):
        p, w = v.get(part), v.get(whole)
        if p is not None and w is not None and w % p:
            return part, f"{whole} ({w}) must be a multiple of {part} ({p}): {what}"
        return None
    return Rule(check, f"{part} divides {whole}")


@dataclass(frozen=True)
class HFModel:
    """A validated hf_config: its family, the head class, the config as given, and what it makes."""

    model_type: str
    architecture: str              # the transformers class (architectures[0], or the family's base model)
    config: dict                   # the config.json object as the request gave it
    layers: tuple                  # the Layers save_pretrained writes, in state_dict() order
    tied: tuple = ()               # parameters save_pretrained leaves out: tied to another
    dtype: str | None = None       # the config's dtype / torch_dtype, when it names one
    blocks: int = 0                # transformer blocks (num_hidden_layers, GPT-2's n_layer)
    width: int | None = None       # the hidden size (hidden_size, GPT-2's n_embd)

    def describe(self) -> dict:
        """What the report says about the model."""
        return {"model_type": self.model_type, "architecture": self.architecture, "transformers": TRANSFORMERS,
                "tied": list(self.tied)}


@dataclass
class Builder:
    """Collects a family's layers in state_dict() order."""

    prefix: str = ""
    init: dict | None = None        # every layer's init unless add() gives one
    layers: list = field(default_factory=list)

    def add(self, name: str, type: str, role: str, *, bias=None, init: dict | None = None, **params) -> None:
        """A layer named as transformers names the module, with its role (``core.roles``)."""
        full = f"{self.prefix}{name}"
        self.layers.append(Layer(len(self.layers), full, type, Activation(), params, bias=bias,
                                 init=init if init is not None else self.init, role=role,
                                 echo={"type": type, "name": full, **params}))


class Family:
    """A model family (``model_type``). Subclasses declare ``fields``, ``rules`` and ``heads`` and build."""

    model_type: str = ""
    #: The config keys that give the number of blocks and the width (what the recipes read).
    blocks_key: str = "num_hidden_layers"
    width_key: str = "hidden_size"
    #: The config keys that shape the tensors or their initialization (others are kept, never read).
    fields: tuple[Field, ...] = ()
    rules: tuple[Rule, ...] = ()
    #: Other names transformers accepts for a key (its config's ``attribute_map``): alias -> key.
    aliases: dict[str, str] = {}
    #: ``architectures[0]`` -> the kind of head; the family's base model when ``architectures`` is absent.
    heads: dict[str, str] = {}
    base: str = ""
    #: transformers' default of ``tie_word_embeddings`` for the family.
    tie_default: bool = False

    def tied(self, values: dict) -> bool:
        """Whether the output projection is tied to the input embedding (absent: the family's default)."""
        return values["tie_word_embeddings"]

    def build(self, values: dict, head: str) -> tuple[list[Layer], tuple]:
        """(the layers save_pretrained writes, in order; the parameter names it leaves out as tied)."""
        raise NotImplementedError

    def with_lm_head(self, b: Builder, values: dict, width: int) -> tuple[list[Layer], tuple]:
        """``build``'s answer for a causal LM: ``lm_head`` (width -> vocab, no bias) after the layers of
        ``b``, or, tied to the token embedding, left out as save_pretrained leaves it out."""
        if self.tied(values):
            return b.layers, ("lm_head.weight",)
        b.prefix = ""
        b.add("lm_head", "dense", "readout", bias=False, in_features=width, out_features=values["vocab_size"])
        return b.layers, ()


__all__ = ["HFModel", "Builder", "Family", "size", "blocks", "flag", "initializer_range", "pad_token_id",
           "tie_word_embeddings", "padding_row", "pad_inside", "divides", "MAX_BLOCKS", "TRANSFORMERS"]
