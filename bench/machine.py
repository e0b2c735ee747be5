"""What machine a benchmark ran on: CPU model, the flags that decide int8/fp32 speed, library versions.

Machines of one kind differ (AVX2-only AMD, AVX-512/VNNI/AMX Intel, ~4x apart), so every benchmark prints this.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
LIBRARIES = ("onnxruntime", "torch", "transformers", "sentence-transformers", "faiss-cpu", "bm25s", "numpy")


def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", set[str]()
    # "AMD EPYC" names Zen 4 (cpu family 25) and Zen 5 (26) alike, and their speeds differ about 2x
    ids: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                model = value.strip()
            elif key == "flags":
                flags = set(value.split())
            elif key in ("cpu family", "model"):
                ids.setdefault(key, value.strip())
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in LIBRARIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"model": model, "family": " ".join(f"{k} {v}" for k, v in ids.items()), "vcpus": os.cpu_count(),
            "flags": [f for f in SPEED_FLAGS if f in flags], "versions": versions,
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def describe(cpu: dict[str, Any]) -> str:
    flags = " ".join(cpu["flags"]) or "none of " + ", ".join(SPEED_FLAGS)
    libs = ", ".join(f"{k} {v or 'not installed'}" for k, v in cpu["versions"].items())
    family = f", {cpu['family']}" if cpu.get("family") else ""
    return f"CPU: {cpu['model']} ({cpu['vcpus']} vCPUs{family}); speed flags: {flags}\nversions: {libs}"
