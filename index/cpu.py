"""The host CPU: its model name and flags. They decide which int8 kernels and bf16 paths are fast or exact here
(VNNI, AVX-512 BF16, AMX), so training, quantisation and the benchmarks read them from one place."""

from __future__ import annotations

import platform
from pathlib import Path

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return model, flags


def cpu_model() -> str:
    return _cpuinfo()[0]


def cpu_flags() -> set[str]:
    return _cpuinfo()[1]


def has_vnni() -> bool:
    """int8 dot products straight into int32: signed 8-bit weights at full range cannot saturate."""
    return bool(VNNI_FLAGS & cpu_flags())
