"""Evaluation metrics: pure functions, no I/O.

Retrieval metrics take the ranked list of doc ids of the returned passages (one entry per passage, so a
document may repeat). `hit_at_k` and `reciprocal_rank` look at passage positions ("is a gold document
among the first k passages", "1 / position of the first gold passage"); `ndcg_at_k` works at document
level (duplicates removed, first occurrence kept) with binary relevance.

EM / F1 follow the official CMRC 2018 evaluation script: lowercase, strip the CMRC punctuation list,
every CJK character is one token, runs of other characters are split into words (the script uses NLTK's
word tokenizer; a regex word/punctuation split stands in for it), F1 from the longest common contiguous
run of tokens, maximum over the gold answers.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

# The punctuation list of cmrc2018_evaluate.py ('……' is listed there as one entry; '…' is added so that
# a single ellipsis character is stripped too).
CMRC_PUNCTUATION: frozenset[str] = frozenset([
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "…", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』",
])
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_WORD_RE = re.compile(r"\w+|[^\w\s]")


# --- retrieval ----------------------------------------------------------------------------------------


def dedupe(ranked: Iterable[str]) -> list[str]:
    """Keep the first occurrence of each id, in order."""
    seen: set[str] = set()
    out: list[str] = []
    for d in ranked:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def hit_at_k(ranked_doc_ids: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1.0 when a gold document is among the first k passages, else 0.0."""
    g = set(gold)
    return 1.0 if any(d in g for d in ranked_doc_ids[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str]) -> float:
    """1 / (1-based position of the first gold passage); 0.0 when none is ranked."""
    g = set(gold)
    for i, d in enumerate(ranked):
        if d in g:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Binary-relevance nDCG@k over distinct documents (first occurrence kept)."""
    g = set(gold)
    if not g or k <= 0:
        return 0.0
    docs = dedupe(ranked)[:k]
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(docs) if d in g)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(g), k)))
    return dcg / idcg


# --- answers ------------------------------------------------------------------------------------------


def contains_gold(text: str, answers: Sequence[str], require_all: bool) -> bool:
    """Whether `text` contains the gold answers: every one (`require_all`) or any one. Both sides are NFKC-folded:
    gold answers keep the source's full-width characters (（区）, ５０元) where cleaning may fold them."""
    if not answers:
        return False
    text = unicodedata.normalize("NFKC", text)
    hits = [unicodedata.normalize("NFKC", a) in text for a in answers]
    return all(hits) if require_all else any(hits)


def first_citation_in_gold(cited_doc_ids: Sequence[str], gold: Iterable[str]) -> bool:
    """Whether the answer's first citation is of a gold document (False for an answer that cites nothing)."""
    return bool(cited_doc_ids) and cited_doc_ids[0] in set(gold)


def cmrc_tokens(text: str, remove_punctuation: bool = True) -> list[str]:
    """CMRC mixed segmentation: one token per CJK character (and punctuation), words for other runs."""
    s = str(text).lower().strip()
    out: list[str] = []
    buf = ""
    for ch in s:
        if remove_punctuation and ch in CMRC_PUNCTUATION:
            continue
        if _CJK_RE.match(ch) or ch in CMRC_PUNCTUATION:
            if buf:
                out.extend(_WORD_RE.findall(buf))
                buf = ""
            out.append(ch)
        else:
            buf += ch
    if buf:
        out.extend(_WORD_RE.findall(buf))
    return out


def cmrc_normalize(text: str) -> str:
    """CMRC EM normalisation: lowercase, strip, drop the punctuation list."""
    return "".join(ch for ch in str(text).lower().strip() if ch not in CMRC_PUNCTUATION)


def longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous token run."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                cur[j + 1] = prev[j] + 1
                best = max(best, cur[j + 1])
        prev = cur
    return best


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """CMRC EM: 1.0 when the normalised prediction equals a normalised gold answer."""
    p = cmrc_normalize(prediction)
    return 1.0 if any(cmrc_normalize(a) == p for a in answers) else 0.0


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """CMRC F1 (longest common contiguous token run), maximum over the gold answers."""
    pred = cmrc_tokens(prediction)
    best = 0.0
    for a in answers:
        gold = cmrc_tokens(a)
        lcs = longest_common_run(gold, pred)
        if lcs == 0:
            continue
        precision = lcs / len(pred)
        recall = lcs / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


# --- refusal and aggregates ---------------------------------------------------------------------------


def refusal_precision(refused: Sequence[bool], unanswerable: Sequence[bool]) -> float | None:
    """Share of refused questions that are unanswerable; None when nothing was refused, or when the set has no
    unanswerable question (CMRC, ChronoQA: it would read 0 whatever the refusals; refusal_rate shows them)."""
    n_refused = sum(1 for r in refused if r)
    if n_refused == 0 or not any(unanswerable):
        return None
    return sum(1 for r, u in zip(refused, unanswerable, strict=True) if r and u) / n_refused


def refusal_recall(refused: Sequence[bool], unanswerable: Sequence[bool]) -> float | None:
    """Share of unanswerable questions that were refused; None when there are none."""
    n_unans = sum(1 for u in unanswerable if u)
    if n_unans == 0:
        return None
    return sum(1 for r, u in zip(refused, unanswerable, strict=True) if r and u) / n_unans


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), p in [0, 100]; None for no values."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError("p must be in [0, 100]")
    s = sorted(values)
    pos = (len(s) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
