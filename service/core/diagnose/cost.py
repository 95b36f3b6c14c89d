"""What a diagnose request costs, estimated from the document before anything is drawn, and the
configured limits it is held to (HTTP 413)."""

from __future__ import annotations

import math

from ..errors import SpecError
from .network import CONV_CHUNK_BYTES
from .request import Probe

#: Temporaries of one layer step (in units of the widest layer's batch activations) the cost counts.
WORK_ARRAYS = 24
#: Score-sized temporaries (batch x heads x tokens^2) of one attention step the cost counts.
ATTENTION_WORK = 6
#: Work per activation value per layer and scheme besides the matrix products (the activation and its
#: derivative, the statistics, three histograms, the gradient's elementwise steps), in multiply-adds:
#: measured ~200 ns per value (8 schemes x 100 tanh layers of width 28, batch 1024: 4.6 s of CPU, where
#: the products are 0.3 s) at ~3e9 multiply-adds per second. Without it 8 schemes x 1000 narrow layers
#: at batch 1024 passed the cost limit and ran for minutes (benchmarks/bench_bounds.py, ceilings).
ELEMENTWISE_WORK = 512
#: Bytes of the answer per layer and scheme (its statistics, histograms and verdict as Python objects,
#: then as JSON): measured 18 KiB (tracemalloc, 100 layers x 8 schemes); held until the answer is sent.
RESULT_BYTES_PER_LAYER = 20 << 10


def estimate_cost(p: Probe) -> dict:
    """What running a diagnose document costs, from the document alone (nothing is drawn).

    ``multiply_adds``: forward + backward (about 3x forward) for every scheme, an attention's scores and
    weighted sums (tokens^2 x width per example) included, plus the elementwise work on every activation
    value (``ELEMENTWISE_WORK``); ``weight_elements``:
    values drawn; ``peak_bytes``: an upper estimate of the memory held at once (schemes run one
    after another: activations and pre-activations of every layer for the batch, the gradients
    in flight, the weights in float64 and storage dtype, the conv im2col chunks, the answer)."""
    B = p.batch
    n = len(p.schemes)
    fwd = sum(st.macs for st in p.stages)
    weights = sum(math.prod(st.weight_shape) + st.units for st in p.stages)
    widest = max([math.prod(p.input_shape)] + [st.out_size for st in p.stages])
    # cached per layer: z and a (a layer's input is the previous layer's a); plus the probe x and G
    acts = 8 * B * (math.prod(p.input_shape) + 2 * sum(st.out_size for st in p.stages) + p.stages[-1].out_size)
    # one layer's temporaries (gradients in flight, masks, statistics, histogram): generously bounded
    work = WORK_ARRAYS * 8 * B * widest
    # every weight and bias in float64, plus one tensor being drawn and converted (storage, float64, transposed,
    # its dW); whole-matrix schemes hold what their construction needs (orthogonal: a Gaussian matrix and its QR)
    drawn = [(t, t.matrix_work()) for plan in p.plans for t in plan.tensors]
    drawing = max(t.size * (t.dtype.itemsize + 8 * 3) if w is None else w.bytes + 8 * t.size for t, w in drawn)
    wbytes = 8 * weights + drawing
    conv = [st for st in p.stages if st.type != "dense"]
    cols = 0
    if conv:  # im2col of a chunk, its gradient and the matmul's output
        per = max(8 * math.prod(st.in_shape) * math.prod(st.kernel) for st in conv)
        cols = 3 * min(CONV_CHUNK_BYTES * 2, B * per)
    # attention: the weights P (batch x heads x tokens^2) of every attention kept for backward, and one
    # attention's scores, gradients and temporaries in flight
    scores = [8 * B * st.heads * st.tokens * st.tokens for st in p.stages if st.heads]
    attn = sum(scores) + ATTENTION_WORK * max(scores, default=0)
    result = RESULT_BYTES_PER_LAYER * n * len(p.stages)
    total = acts + work + wbytes + cols + attn + result
    elementwise = ELEMENTWISE_WORK * B * sum(st.out_size for st in p.stages)
    return {"schemes": n, "batch": B, "layers": len(p.stages),
            "multiply_adds": n * (3 * B * fwd + elementwise) + drawing_work(p),
            "weight_elements": n * weights, "peak_bytes": total}


def drawing_work(p: Probe) -> int:
    """Drawing the whole-matrix weights is work too (a 2048 x 2048 orthogonal is a QR of 2.3e10 flops, more
    than the forward and backward passes of a small batch): counted as multiply-adds, two flops each."""
    return sum(w.flops for plan in p.plans for t in plan.tensors if (w := t.matrix_work()) is not None) // 2


#: limits key -> (cost key, field the error names, what it counts); the 413 names ``diagnose_<key>``.
LIMITS = {
    "max_batch": ("batch", "batch", "examples in the probe batch"),
    "max_cost": ("multiply_adds", "architecture", "multiply-adds (forward and backward, every scheme)"),
    "max_bytes": ("peak_bytes", "architecture", "bytes of working memory"),
}


def check_limits(cost: dict, limits: dict | None, table: dict = LIMITS) -> None:
    """SpecError (with ``limit``: HTTP 413) when the cost exceeds a configured limit.

    ``limits`` keys: ``max_batch``, ``max_cost`` (multiply-adds), ``max_bytes`` (absent or None:
    unlimited). The error's ``limit`` is ``diagnose_<key>``, the service's configuration field.
    ``table``: what each key bounds, in a caller's words (calibration's are ``core.calibrate.LIMITS``)."""
    if not limits:
        return
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise ValueError(f"unknown diagnose limits: {', '.join(sorted(unknown))}")
    for key, (what, field, words) in table.items():
        allowed = limits.get(key)
        if allowed is not None and cost[what] > allowed:
            raise SpecError(field, f"the request needs {cost[what]:,} {words}; at most diagnose_{key} = {allowed:,} "
                                   f"are allowed ({cost['schemes']} scheme(s), batch {cost['batch']}, "
                                   f"{cost['layers']} layers)",
                            limit=f"diagnose_{key}", requested=cost[what], allowed=allowed)
