"""The request document's fields, declared once as data.

A layer type (``core.layers``), the request document (``core.document``) and the diagnose document
(``core.diagnose.request``) declare their fields here as ``Field`` values: a name, a ``Kind`` that
says what a value looks like (its JSON type and bounds), whether it is required, its default and
its documentation. Nothing here validates: the boundary (``service.document``) turns each kind into
the marshmallow field that validates it, once, and into the OpenAPI schema that documents it, so
the two never disagree. The engine receives the validated, typed values.

Kinds are frozen dataclasses, so that two declarations of the same kind compare equal and share
one OpenAPI component (``ref``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

#: No single dimension beyond 2^31, rank at most 8 (bounds every size computation).
MAX_DIM = 1 << 31
MAX_RANK = 8
#: Layer names: what becomes part of file names, archive entries and headers.
NAME_MAX = 128
NAME_PATTERN = r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-]|\.(?!\.))*(?<!\.)$"
NAME_RULE = "may hold only ASCII letters, digits, '_', '-' and single inner '.'"

MISSING = object()


class Kind:
    """What a field's value looks like. ``ref`` names a shared OpenAPI component, if any."""

    ref: str | None = None


@dataclass(frozen=True)
class Integer(Kind):
    """A JSON integer (no fraction, no boolean, no string) in [minimum, maximum]."""

    minimum: int
    maximum: int
    ref: str | None = None


@dataclass(frozen=True)
class Number(Kind):
    """A finite JSON number (no boolean, no string) in [minimum, maximum]."""

    minimum: float
    maximum: float


@dataclass(frozen=True)
class Boolean(Kind):
    """true or false (no 0, 1 or strings)."""


#: A ByteSize given as text: a decimal number and a unit, any case, spaces around (what the boundary and
#: the OpenAPI pattern both accept).
BYTE_SIZE_PATTERN = r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KkMmGgTt](?:[Ii])?[Bb])\s*$"
BYTE_SIZE_TEXT = re.compile(BYTE_SIZE_PATTERN.replace("^", "").replace("$", ""))
BYTE_SIZE_TEXT_MAX = 32


@dataclass(frozen=True)
class ByteSize(Kind):
    """A size in bytes, ``minimum``..``maximum``: an integer, or a string as transformers' ``max_shard_size``
    takes it: a number and a unit, decimal (``"5GB"`` = 5 * 10^9; KB, MB, GB, TB) or binary (``"5GiB"`` =
    5 * 2^30; KiB, MiB, GiB, TiB)."""

    minimum: int
    maximum: int


@dataclass(frozen=True)
class Choice(Kind):
    """One of a fixed list of strings."""

    choices: tuple[str, ...]
    ref: str | None = None


@dataclass(frozen=True)
class Text(Kind):
    """A string of ``min_length``..``max_length`` characters matching ``pattern`` (if any)."""

    min_length: int
    max_length: int
    pattern: str | None = None
    pattern_error: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class IntOrList(Kind):
    """An integer, or a list of 1..MAX_RANK integers (exactly ``length`` when set), each 1..MAX_DIM."""

    length: int | None = None

    @property
    def ref(self) -> str | None:
        return f"KernelSize{self.length}d" if self.length else None


@dataclass(frozen=True)
class DimList(Kind):
    """A list of ``min_length``..``max_length`` integers, each 1..MAX_DIM (its length checked first)."""

    min_length: int = 1
    max_length: int = MAX_RANK


@dataclass(frozen=True)
class TextList(Kind):
    """A list of ``min_length``..``max_length`` strings of 1..``item_max`` characters, or null."""

    min_length: int
    max_length: int
    item_max: int


@dataclass(frozen=True)
class SchemeRef(Kind):
    """A scheme of the registry: a name or ``{"name": ..., <parameters>}``, normalized by the registry
    (``core.schemes.normalize_spec``); ``allow_false``: ``false`` too (a bias that is dropped)."""

    allow_false: bool = False


@dataclass(frozen=True)
class ActivationRef(Kind):
    """An activation of the registry (``core.activations``): a name or ``{name, negative_slope}``."""

    ref: str | None = "Activation"


@dataclass(frozen=True)
class SchemeList(Kind):
    """A list of ``min_length``..``max_length`` schemes (its length checked first)."""

    min_length: int
    max_length: int


@dataclass(frozen=True)
class IntOrShortList(Kind):
    """An integer, or a list of 1..``max_length`` integers, each 1..``maximum``."""

    max_length: int
    maximum: int


@dataclass(frozen=True)
class RangeList(Kind):
    """A list of at most ``max_length`` ranges ``[first, last]`` of integers 0..``maximum``, first <= last,
    in increasing order and not overlapping (diagnose's residual branches, by layer index)."""

    max_length: int
    maximum: int


@dataclass(frozen=True)
class Object(Kind):
    """A closed JSON object of declared fields (unknown fields are an error), e.g. ``/v1/calibrate``'s
    ``calibration``; its errors name ``<field>.<member>``."""

    fields: tuple
    ref: str | None = None


@dataclass(frozen=True)
class NotApplicable(Kind):
    """A field of the request document that this document does not take (null is tolerated)."""

    why: str


@dataclass(frozen=True)
class Field:
    """One field of a document object."""

    name: str
    kind: Kind
    required: bool = False
    default: Any = MISSING       # the value the engine sees when the field is absent (not echoed)
    nullable: bool = False       # null is accepted (and means: absent)
    doc: str = ""


@dataclass(frozen=True)
class Rule:
    """A check across fields of one object, run after each field is valid: ``check(values)`` returns
    ``(field, message)`` for the first violation, or None. The error names ``field``."""

    check: Callable[[dict], tuple[str, str] | None]
    doc: str = ""


def dim(name: str, *, required: bool = True, doc: str = "", **kw) -> Field:
    """A size: an integer 1..MAX_DIM."""
    return Field(name, Integer(1, MAX_DIM, ref="Dim"), required=required, doc=doc, **kw)
