"""openapi.yaml, generated: ``python -m service.openapi`` writes it, ``--check`` says whether it is stale.

The committed top-level ``openapi.yaml`` (served by ``service.api.meta``; ``service/openapi.yaml`` is
a symlink to it, a copy in wheels) is ``dump(build())``. Its hand-written part is ``template.yaml``:
the prose, the paths, parameters, headers, responses, examples and response schemas. Everything a
declaration owns is generated (``build.py`` lists what comes from where): the request document's
components from the same declarations the boundary (``service.document``) validates with, one
kind -> schema mapping in ``schemas.py`` as ``service.document.fields`` has one kind -> marshmallow
field mapping; the enums from the registries; the version and the documented defaults from
``service.version`` and ``service.config``. Change a declaration or the template, then regenerate
(and ``npm run generate-types`` in examples/node): tests/openapi fails while either is stale.
"""

from .build import build, dump, stale

__all__ = ["build", "dump", "stale"]
