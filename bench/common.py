"""What several benchmarks share, so that each is its measurement and little else: a free local port, the
nearest-rank percentile the HTTP benchmarks report, and dropping the embedding cache for a cold build.

Imported as `common`, like `machine`: bench/ is a script's own folder, and the modules that run with
`python -m bench.…` put it on sys.path first.
"""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nearest_rank(values: list[float], p: float) -> float:
    """The value at rank round(p% of n-1) of the sorted values (no interpolation); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def drop_embedding_cache(cache_dir: Path) -> None:
    """Delete the embedding cache (and its SQLite journal files): the next build embeds every chunk again."""
    for p in cache_dir.glob("embeddings.sqlite*"):
        p.unlink()
