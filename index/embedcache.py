"""Embeddings keyed by (model fingerprint, passage-text hash), so rebuilds embed only new text."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path, model_fingerprint: str, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model = model_fingerprint
        self.dim = dim
        # A fresh connection per use keeps this safe to share across the builder's process boundary.
        self._path = path
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, vec BLOB, PRIMARY KEY (model, key))")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                rows = db.execute(f"SELECT key, vec FROM emb WHERE model=? AND key IN ({marks})", [self.model, *part])
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == self.dim:
                        out[key] = vec
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO emb (model, key, vec) VALUES (?, ?, ?)",
                [(self.model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )
