"""Reduced precision for faster inference: the same model, called the same way, returning the same dict.

    tagger = Tagger.load(path).with_precision("bf16")

fp32 is exact and the default. bf16 runs every matmul in bfloat16 under autocast (layer norms and softmax
stay fp32): much faster where the CPU has AMX or AVX512-BF16, or on a GPU. int8 quantises every nn.Linear
dynamically (weights int8, activations quantised per batch; CPU only). Both change some predictions:
`python -m bench.inference` reports by how much (entity F1 on ANERcorp test, spans that differ).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "int8")


class Bf16Autocast:
    """The model under bf16 autocast; its Linear weights are stored in bf16 once, rather than cast on every call
    (autocast would round them the same way, so the results do not change)."""

    def __init__(self, model: nn.Module, device_type: str):
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.to(torch.bfloat16)
        self.model = model
        self.device_type = device_type

    def __call__(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(**inputs)


def reduced_precision(model: nn.Module, precision: str, device: torch.device):
    """`model` (changed in place) wrapped to run at `precision`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        return Bf16Autocast(model, device.type)
    if precision == "int8":
        if device.type != "cpu":
            raise ValueError("int8 dynamic quantisation runs on the CPU only; use bf16 on a GPU")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates its quantized tensor API, not this use of it
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return model
