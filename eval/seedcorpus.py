"""The shipped question sets (eval/sets/seeds-*.jsonl) ask about the seed articles (corpus/seeds/), so they
run on a pristine copy of them, never on the live data directory: uploads and deletions there would change
the figures and the corpus fingerprint, and `eval compare` could not tell a regression from a new document.

Like an external set (eval/external.py) the copy is cached in `eval/cache/seeds/corpus/` with its own index
`eval/cache/seeds/index/` (generations + embedding cache): a file is rewritten only when its bytes change and
files that are no seed are removed, so an unchanged checkout reuses the index. The three seed sets share the
one copy (one corpus, one index). `eval/cache/` is git-ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpus.documents import SEEDS_DIR
from eval import external
from eval import sets as evalsets
from eval.rawfiles import write_if_changed
from service.settings import Settings

CACHE_NAME = "seeds"


@dataclass(frozen=True)
class SeedCopy:
    root: Path
    corpus_dir: Path
    index_dir: Path
    written: int
    unchanged: int
    removed: int


def is_seed_set(name_or_path: str) -> bool:
    """A set shipped in eval/sets/ (all of them ask about the seed articles); a JSONL file of one's own
    elsewhere runs on the configured data directory."""
    try:
        _, path = evalsets.resolve_set(name_or_path)
    except FileNotFoundError:
        return False
    return path.resolve().parent == evalsets.SETS_DIR.resolve()


def materialise_seeds(cache_dir: Path | None = None, seeds: Path = SEEDS_DIR) -> SeedCopy:
    """Make eval/cache/seeds/corpus/ exactly the shipped seed articles."""
    root = (cache_dir or external.CACHE_DIR) / CACHE_NAME
    corpus_dir = root / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in sorted(seeds.glob("*.md"))}
    written = sum(write_if_changed(corpus_dir / name, p.read_bytes()) for name, p in wanted.items())
    removed = 0
    for p in corpus_dir.iterdir():
        if p.name not in wanted and p.is_file():
            p.unlink()
            removed += 1
    return SeedCopy(root, corpus_dir, root / "index", written, len(wanted) - written, removed)


def seed_settings(settings: Settings, cache_dir: Path | None = None) -> tuple[Settings, SeedCopy]:
    """The settings with corpus_dir / index_dir on the pristine copy (model, reader and the rest unchanged)."""
    copy = materialise_seeds(cache_dir)
    return settings.model_copy(update={"corpus_dir": copy.corpus_dir, "index_dir": copy.index_dir}), copy
