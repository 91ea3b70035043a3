"""Reduced precision for faster inference: the same model, called the same way, returning the same dict.

    tagger = Tagger.load(path)                     # precision="auto": bf16 where the hardware has it, else fp32
    tagger = Tagger.load(path, precision="fp32")   # exact, on every machine

fp32 is exact. bf16 runs every matmul in bfloat16 under autocast (layer norms and softmax stay fp32): about
twice as fast where the CPU has AMX or AVX512-BF16 (or on a GPU), with the same F1 in
`python -m bench.inference`, but slower than fp32 where bf16 is emulated; so "auto", the default, picks bf16
only where it is native. int8 quantises every nn.Linear dynamically (weights int8, activations quantised per
batch; CPU only). Both change some predictions: `python -m bench.inference` reports by how much (entity F1 on
ANERcorp test, spans that differ).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from models.errors import UserError
from models.names import PRECISIONS


class PrecisionUnavailable(UserError, ValueError):
    """A precision this device does not run."""


def has_native_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run on bf16 hardware: a CUDA GPU that supports it, a CPU with AMX or AVX512-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # private probes (torch 2.x); a torch without them reports no native bf16, the safe answer
        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" made concrete for this device: bf16 where native, else fp32; other names checked and returned."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if has_native_bf16(device) else "fp32"
    return precision


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
    precision = resolve_precision(precision, device)
    if precision == "bf16":
        return Bf16Autocast(model, device.type)
    if precision == "int8":
        if device.type != "cpu":
            raise PrecisionUnavailable("int8 dynamic quantisation runs on the CPU only; use bf16 on a GPU")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates its quantized tensor API, not this use of it
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return model
