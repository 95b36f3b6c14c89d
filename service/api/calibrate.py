"""``POST /v1/calibrate``: LSUV-calibrated weights (``service.core.calibrate``) in any format.

It takes the weights request document (``format``, ``metadata``, ``max_shard_size``; no
``tensors``; ``scheme`` defaults to ``orthogonal``) restricted to layers that run forward, plus
``calibration``. The order of checks, each before any array is allocated::

    415 Content-Type  ->  413 body size  ->  400 JSON  ->  413 max_layers  ->  422 marshmallow
    ->  406 Accept / format  ->  422 engine (SpecError)  ->  413 diagnose_max_batch / _cost / _bytes
    ->  413 element limits  ->  304 If-None-Match  ->  200 (draw, calibrate, encode)

The answer is a pure function of the normalized request, the calibration and the engine, so it
carries a strong ETag (``"<fingerprint>-calibrate-<format tag>"``) and immutable caching headers.
The calibration summary (settings, per-layer ``factor``, ``iterations``, ``std``) is the report's
``calibration`` (JSON, the npz manifest, the safetensors metadata with ``metadata: full``) and, for
every format, two headers: ``X-Weightinit-Calibration-Factors`` (each layer's factor, shortest
round-trip repr, comma-separated, in layer order) and ``X-Weightinit-Calibration-Iterations``.
"""

from __future__ import annotations

from flask import Blueprint

from .. import document, limits
from ..core import calibrate as cal
from ..output import formats
from ..output.report import Report
from .http import (CALIBRATION_FACTORS_HEADER, CALIBRATION_ITERATIONS_HEADER, SCHEME_HEADER, SEED_HEADER, config,
                   immutable_headers, matches_if_none_match, not_modified, read_json_body)
from .weights import binary_response, json_artifact_response, negotiate

bp = Blueprint("calibrate", __name__)


@bp.post("/v1/calibrate")
def calibrate_view():
    cfg = config()
    doc = read_json_body()
    limits.check_document(doc, cfg)
    req = document.load_calibrate_request(doc)
    fmt, media_type = negotiate(req.format)
    job = cal.build(req)
    formats.get(fmt).check(job.plan)
    cal.check_limits(cal.estimate_cost(job), cfg.diagnose_limits())
    limits.check_elements(job.plan, fmt, cfg)
    limits.check_matrix_work(limits.drawn_tensors(job.plan), cfg)
    limits.check_torch_replay(job.plan, cfg)
    headers = {**immutable_headers(f'"{job.etag_value}-calibrate-{req.options.tag(fmt)}"'),
               SEED_HEADER: str(job.probe.seed), SCHEME_HEADER: job.plan.request.scheme["name"],
               "Vary": "Accept"}
    if matches_if_none_match(headers["ETag"]):
        return not_modified(headers)
    plan = cal.run(job)
    layers = plan.summary["layers"]
    headers[CALIBRATION_FACTORS_HEADER] = ",".join(repr(lay["factor"]) for lay in layers)
    headers[CALIBRATION_ITERATIONS_HEADER] = ",".join(str(lay["iterations"]) for lay in layers)
    artifact = formats.encode(Report(plan), fmt, options=req.options)
    if fmt == "json":
        return json_artifact_response(artifact, media_type, headers)
    return binary_response(artifact, media_type, headers)
