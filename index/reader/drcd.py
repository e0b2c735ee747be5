"""DRCD (Traditional Chinese, SQuAD v1.1 format) as Simplified-Chinese reader training examples.

OpenCC's ``t2s`` conversion is mostly one character for one character, but not always, so every answer
offset is checked after conversion: kept when ``context[start:start+len(answer)] == answer``, else moved to
the occurrence of the converted answer nearest the original offset, else dropped (and counted).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.sentences import sentence_spans

__all__ = ["ConversionReport", "ReaderExample", "add_negatives", "load_drcd", "swapped_term", "without_answer"]


@dataclass(frozen=True)
class ReaderExample:
    """One question against one context; ``answer_start`` is None for a context that does not answer it."""

    qid: str
    question: str
    context: str
    answer: str
    answer_start: int | None
    article: str  # negatives are drawn from other articles

    @property
    def answerable(self) -> bool:
        return self.answer_start is not None


@dataclass
class ConversionReport:
    questions: int = 0
    kept: int = 0
    relocated: int = 0
    dropped: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"questions": self.questions, "kept": self.kept, "relocated": self.relocated,
                "dropped": len(self.dropped), "dropped_ids": self.dropped[:50], "files_sha256": self.sha256}


def _converter() -> Any:
    try:
        import opencc
    except ImportError as exc:  # training only: the `train` extra installs it
        raise RuntimeError("reader training needs OpenCC: pip install -e '.[train]'") from exc
    return opencc.OpenCC("t2s")


def _relocate(context: str, answer: str, start: int) -> int | None:
    if context[start : start + len(answer)] == answer:
        return start
    found, at = [], context.find(answer)
    while at >= 0:
        found.append(at)
        at = context.find(answer, at + 1)
    return min(found, key=lambda i: abs(i - start)) if found else None


def load_drcd(paths: Sequence[Path]) -> tuple[list[ReaderExample], ConversionReport]:
    """Every DRCD question with its first answer, converted to Simplified Chinese, offsets verified."""
    convert = _converter().convert
    report = ConversionReport()
    out: list[ReaderExample] = []
    for path in paths:
        raw = Path(path).read_bytes()
        report.sha256[Path(path).name] = hashlib.sha256(raw).hexdigest()
        for article in json.loads(raw)["data"]:
            for para in article["paragraphs"]:
                context = convert(para["context"])
                for qa in para["qas"]:
                    report.questions += 1
                    first = qa["answers"][0]
                    answer = convert(first["text"]).strip()
                    start = _relocate(context, answer, int(first["answer_start"])) if answer else None
                    if start is None:
                        report.dropped.append(str(qa["id"]))
                        continue
                    if start == int(first["answer_start"]):
                        report.kept += 1
                    else:
                        report.relocated += 1
                    out.append(ReaderExample(str(qa["id"]), convert(qa["question"]).strip(), context, answer, start,
                                             str(article.get("id") or article.get("title"))))
    return out, report


def add_negatives(examples: Iterable[ReaderExample], per_question: float = 0.5, seed: int = 13) -> list[ReaderExample]:
    """The answerable examples plus no-answer pairs: a question against a paragraph of another article
    (about ``per_question`` per question), so the no-answer score learns to say "not here"."""
    items = list(examples)
    rng = random.Random(seed)
    contexts = sorted({(e.article, e.context) for e in items})
    negatives = []
    for e in items:
        if rng.random() >= per_question:
            continue
        for _ in range(10):
            article, context = contexts[rng.randrange(len(contexts))]
            if article != e.article and e.answer not in context:
                negatives.append(ReaderExample(f"{e.qid}#neg", e.question, context, "", None, article))
                break
    return items + negatives


def without_answer(examples: Iterable[ReaderExample], share: float = 0.3, seed: int = 13) -> list[ReaderExample]:
    """No-answer pairs that stay on topic: for about ``share`` of the questions, their own paragraph with the
    sentence(s) holding the answer cut out (kept only when the answer occurs nowhere else in what remains).
    The neighbouring sentences still share the question's words, so the reader learns that a passage about
    the right thing may still not state the asked-for fact."""
    rng = random.Random(seed)
    out = []
    for e in examples:
        if e.answer_start is None or rng.random() >= share:
            continue
        a, b = e.answer_start, e.answer_start + len(e.answer)
        kept = [(s, t) for s, t in sentence_spans(e.context) if t <= a or s >= b]
        rest = "".join(e.context[s:t] for s, t in kept)
        if len(rest) >= 40 and e.answer not in rest:
            out.append(ReaderExample(f"{e.qid}#cut", e.question, rest, "", None, e.article))
    return out


# the words a swap may replace: places, people, organisations, other proper names, and nouns (产值, 人口)
_SWAPPABLE = frozenset({"ns", "nr", "nt", "nz", "n"})
# a noun right after these is the asked-for kind (哪个城市, 什么企业), not a fact the question states
_ASKING = ("哪", "什么", "多少", "几", "何")


@functools.cache
def _pos_cut() -> Any:
    """A private jieba part-of-speech cutter, made once: its dictionary takes ~1 s to load."""
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg.POSTokenizer(jieba.Tokenizer()).lcut


def swapped_term(examples: Iterable[ReaderExample], share: float = 0.3, seed: int = 13) -> list[ReaderExample]:
    """No-answer pairs where the passage is right but the question is not (SQuAD 2.0's swapped entity): for
    about ``share`` of the questions, one name or noun the question shares with its passage is replaced by a
    word of the same part of speech from another question that the passage never mentions, and the question
    is set against the sentences around the answer. 2021年陈皮产值 asked of a passage giving 2021年GDP, or
    a firm's 授信额度 asked of a passage naming another firm's, are the mistakes this teaches against."""
    cut = _pos_cut()
    items = list(examples)
    tagged = {e.qid: [(w.word, w.flag) for w in cut(e.question)] for e in items}
    pool: dict[str, list[str]] = {}
    for words in tagged.values():
        for word, flag in words:
            if flag in _SWAPPABLE and len(word) >= 2:
                pool.setdefault(flag, []).append(word)
    rng = random.Random(seed)
    out = []
    for e in items:
        if e.answer_start is None or rng.random() >= share:
            continue
        words = tagged[e.qid]
        eligible = [i for i, (word, flag) in enumerate(words)
                    if flag in _SWAPPABLE and len(word) >= 2 and word in e.context and word not in e.answer
                    and not (i and words[i - 1][0].startswith(_ASKING))]
        if not eligible:
            continue
        i = rng.choice(eligible)
        word, flag = words[i]
        for _ in range(20):
            other = rng.choice(pool[flag])
            if other != word and other not in e.context:
                break
        else:
            continue
        question = "".join(other if j == i else w for j, (w, _f) in enumerate(words))
        out.append(ReaderExample(f"{e.qid}#swap", question, _around(e.context, e.answer_start), "", None, e.article))
    return out


def _around(context: str, at: int, chars: int = 240) -> str:
    """The sentence holding ``at`` and its neighbours, up to about ``chars`` characters."""
    spans = sentence_spans(context)
    if not spans:
        return context
    k = next((j for j, (s, t) in enumerate(spans) if s <= at < t), 0)
    lo = hi = k
    while True:
        grown = False
        if lo > 0 and spans[hi][1] - spans[lo - 1][0] <= chars:
            lo, grown = lo - 1, True
        if hi + 1 < len(spans) and spans[hi + 1][1] - spans[lo][0] <= chars:
            hi, grown = hi + 1, True
        if not grown:
            return context[spans[lo][0] : spans[hi][1]]
