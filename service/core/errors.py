"""The one error type of the engine: a bad request document or a bad scheme parameter.

``field`` is a dotted path into the request document (``architecture.layers.2.kernel_size``,
``scheme.std``) so that the CLI and the HTTP layer can name it; ``limit`` is set when the
document is well formed but asks for more than a configured limit (HTTP 413).
"""

from __future__ import annotations


class SpecError(ValueError):
    """A request document, layer or scheme parameter the engine cannot honour."""

    def __init__(self, field: str, message: str, *, limit: str | None = None, requested=None, allowed=None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.limit = limit
        self.requested = requested
        self.allowed = allowed

    def with_prefix(self, prefix: str) -> "SpecError":
        """The same error with ``prefix.`` in front of its field path."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return SpecError(field, self.message, limit=self.limit, requested=self.requested, allowed=self.allowed)
