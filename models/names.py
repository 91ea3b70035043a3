"""Names the command lines offer or print in their --help: precisions, decodings, the ONNX graph's file.

The modules that act on them (precision.py, decoding.py, onnx_runtime.py) import torch or transformers; this
one imports nothing, so that `--help` answers before those load.
"""

PRECISIONS = ("auto", "fp32", "bf16", "int8")
DECODERS = ("argmax", "viterbi")
ONNX_FILE = "model.onnx"
