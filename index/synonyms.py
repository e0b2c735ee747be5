"""Colloquial phrases → the words regulations use (index/lexicon/synonyms.tsv), appended to a question's BM25 query
so that 遛狗不牵绳 finds 未使用牵引带 and 罚多少钱 finds 处…罚款."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from index.segmentation import LEXICON_DIR

SYNONYMS = LEXICON_DIR / "synonyms.tsv"


@lru_cache(maxsize=2)
def load_synonyms(path: Path = SYNONYMS) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(phrase, words) pairs, longest phrase first."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        phrase, _, words = line.partition("\t")
        rows.append((phrase.strip(), tuple(words.split())))
    return tuple(sorted(rows, key=lambda r: -len(r[0])))


def expand_terms(question: str, path: Path = SYNONYMS) -> str:
    """The question with the texts' words for its colloquial phrases appended: 'X遛狗不牵绳罚多少钱' →
    'X遛狗不牵绳罚多少钱（携犬 犬只 牵引带 犬绳 罚款）'. A phrase inside a longer matched one adds nothing more."""
    taken: list[tuple[int, int]] = []
    words: list[str] = []
    for phrase, extra in load_synonyms(path):
        at = question.find(phrase)
        while at >= 0:
            end = at + len(phrase)
            if not any(a <= at and end <= b for a, b in taken):
                taken.append((at, end))
                words += [w for w in extra if w not in question and w not in words]
                break
            at = question.find(phrase, at + 1)
    return f"{question}（{' '.join(words)}）" if words else question
