"""How a plan's values are written, besides the format: the options of ``/v1/weights`` that change an
artifact's bytes but not its values, so the ETag names them and the request document does not.

``metadata``: what a safetensors header (the ``safetensors`` format, every shard of ``hf``) says
besides its tensors: ``full`` adds the report (``__metadata__.weightinit``, the theory of every
tensor), ``minimal`` only ``{"format": "pt"}``, for readers that cap the header (some C/C++ readers
stop at 8 KiB). ``max_shard_size``: the ``hf`` format's shard size, as ``save_pretrained``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.fields import ByteSize, Choice, Field

METADATA = ("full", "minimal")
#: transformers 5.23.0 ``save_pretrained(max_shard_size="50GB")``: decimal gigabytes, as it parses them.
DEFAULT_MAX_SHARD_SIZE = 50 * 10 ** 9
#: At most 2^50 bytes (1 PiB): beyond any model, and every sum of sizes stays exact.
MAX_SHARD_SIZE_LIMIT = 1 << 50

#: The request fields that set the options (``service.document`` adds them to the weights request).
FIELDS = (
    Field("metadata", Choice(METADATA), default="full",
          doc="safetensors headers (the safetensors format and every shard of hf): `full` embeds the report "
              "(`__metadata__.weightinit`), `minimal` only {\"format\": \"pt\"}, for readers that cap the header "
              "(some C/C++ readers stop at 8 KiB)."),
    Field("max_shard_size", ByteSize(1, MAX_SHARD_SIZE_LIMIT), default=DEFAULT_MAX_SHARD_SIZE,
          doc="The hf format's largest shard, in bytes or as transformers writes it (\"5GB\" = 5*10^9, \"5GiB\" = "
              "5*2^30); default 50GB, save_pretrained's. Split as save_pretrained splits: in state_dict order, a "
              "tensor larger than the limit alone in its shard."),
)


#: What ``Options.tag`` may add to a format's name in an ETag (openapi.yaml's ETag pattern).
TAG_SUFFIX = r"(\.minimal)?(\.shard[0-9]{1,16})?"


@dataclass(frozen=True)
class Options:
    metadata: str = "full"
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE

    def tag(self, fmt: str) -> str:
        """The ETag suffix of format ``fmt`` (or ``plan``, whose totals give the sizes of both) with
        these options: the name alone when they are the defaults (ETags of earlier releases unchanged),
        else the name and the options whose value changes its bytes."""
        parts = []
        if fmt in ("safetensors", "hf", "plan") and self.metadata != "full":
            parts.append(self.metadata)
        if fmt in ("hf", "plan") and self.max_shard_size != DEFAULT_MAX_SHARD_SIZE:
            parts.append(f"shard{self.max_shard_size}")
        return ".".join((fmt, *parts))


DEFAULT = Options()
