"""PyTorch's CPU random stream and initializers, emulated in NumPy (no torch import).

``generator``: ``torch.manual_seed`` and the uniform/normal draws; ``kernels``: the float kernels
they run; ``init``: ``torch.nn.init``; ``modules``: ``torch.nn`` constructors; ``replay``: a whole
request's plan replayed on that stream (``rng: "torch"``). docs/torch-replay.md has the findings.
This package's ``__init__`` imports nothing: the layer types use ``modules`` and the plan uses
``replay``, which uses the layer types.
"""
