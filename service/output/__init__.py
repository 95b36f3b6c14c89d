"""The output layer: a Plan's report and its artifacts (.json, .npy, .npz, .safetensors).

``report.Report`` computes a plan's theory once; ``formats`` is the registry of formats and their
encoders; ``artifact.Artifact`` is one output file, known in length before a value is drawn and
streamed in bounded memory. The CLI and the HTTP API call the same encoders, so their bytes are
identical for the same document. This layer imports the engine (``core``), never the API or CLI.
"""
