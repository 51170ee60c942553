"""Where models run, and whether bfloat16 autocast pays off there.

bfloat16 autocast is fast only where the hardware computes in bfloat16: CUDA GPUs from
Ampere on, and CPUs with AVX-512 BF16 or AMX. On other CPUs PyTorch emulates it and a
MiniLM forward is about 5× slower than in float32, so every ``bf16`` switch in the configs
defaults to ``null`` ("auto": on where it is fast) rather than to ``true``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@cache
def cpu_has_fast_bf16() -> bool:
    """AVX-512 BF16 or AMX in the CPU flags (Linux); ``False`` where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set(text.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def bf16_is_fast(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_fast_bf16()


def resolve_bf16(setting: bool | None, device: torch.device | str) -> bool:
    """``True``/``False`` as given; ``None`` (auto): on where bfloat16 is fast on ``device``."""
    return bf16_is_fast(device) if setting is None else bool(setting)
