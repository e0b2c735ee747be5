"""Text as people typed it: character forms that PDF and Word text layers use for ordinary characters, folded
one character for one character (so the offset map back to the stored body stays exact), and the layout spaces
that PDF text layers put between Chinese characters and numbers.

The allowed folds are listed explicitly; NFKC as a whole would also turn full-width punctuation （，：；） into
ASCII and the full-width space into a space, which Chinese text and its quotes rely on.
- ideograph forms: Kangxi radicals (U+2F00–2FDF, "⽼旧⼩区" → "老旧小区"), CJK radicals supplement (U+2E80–2EFF)
  and CJK compatibility ideographs (U+F900–FAFF, U+2F800–2FA1F), each only where its NFKC form is one unified
  ideograph. Safe everywhere, also for the verbatim passages of the external evaluation sets.
- full-width ASCII letters and digits (Ｕ+FF10–FF19, FF21–FF3A, FF41–FF5A: "２０２１年" → "2021年"): questions
  are typed with ASCII digits. Not for verbatim passages (their gold answers are compared as given).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

_IDEOGRAPH_FORM_RANGES = ((0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_UNIFIED_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0x20000, 0x323AF))
_FULLWIDTH_ALNUM = ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
_FULLWIDTH_SHIFT = 0xFEE0


def _in(cp: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(a <= cp <= b for a, b in ranges)


@cache
def _ideograph_fold(ch: str) -> str:
    target = unicodedata.normalize("NFKC", ch)
    return target if len(target) == 1 and _in(ord(target), _UNIFIED_RANGES) else ch


def fold_ideograph(ch: str) -> str:
    """The unified ideograph a radical or compatibility form stands for; any other character as it is."""
    return _ideograph_fold(ch) if _in(ord(ch), _IDEOGRAPH_FORM_RANGES) else ch


def fold_typed(ch: str) -> str:
    """fold_ideograph, and full-width ASCII letters and digits as ASCII."""
    cp = ord(ch)
    if _in(cp, _FULLWIDTH_ALNUM):
        return chr(cp - _FULLWIDTH_SHIFT)
    return fold_ideograph(ch)


def fold_text(text: str, verbatim: bool = False) -> str:
    fold = fold_ideograph if verbatim else fold_typed
    return "".join(fold(c) for c in text)


# --- layout spaces ---------------------------------------------------------------------------------------------


def is_ideograph(ch: str) -> bool:
    return _in(ord(ch), _UNIFIED_RANGES)


def is_cjk_punct(ch: str) -> bool:
    """、。〈〉《》「」〔〕【】 and the full-width punctuation （），：；！？ (not full-width letters or digits)."""
    cp = ord(ch)
    return (0x3001 <= cp <= 0x303F or 0xFF01 <= cp <= 0xFF0F or 0xFF1A <= cp <= 0xFF20 or 0xFF3B <= cp <= 0xFF40
            or 0xFF5B <= cp <= 0xFF65 or ch in "“”‘’…—")


def _wide(ch: str) -> bool:
    return is_ideograph(ch) or is_cjk_punct(ch)


def _numberish(ch: str) -> bool:
    return "0" <= ch <= "9"


MIN_SPACED = 3  # fewer spaced boundaries than this in a whole document is style, not a text layer's habit
SPACED_SHARE = 0.3  # the same threshold the PDF extractor uses for letter-spaced pages


@dataclass(frozen=True)
class LayoutSpaces:
    """Which spaces of a document are a text layer's layout, decided once per document from how often the
    boundaries are spaced: a title such as "党建引领 奋进新程" or a byline "陈卓栋 彭纪宁" spaces a few of the
    boundaries between Chinese characters, a PDF text layer spaces most of them ("1860 万元", "〔 2026 〕 9 号")."""

    around_numbers: bool  # Chinese text or punctuation ↔ digits, and Chinese punctuation ↔ Chinese text
    between_ideographs: bool  # letter-spaced text: every boundary of Chinese text, punctuation and numbers

    @staticmethod
    def measure(text: str) -> LayoutSpaces:
        """Count spaced and tight boundaries in the document (whitespace runs count as one space)."""
        chars = [fold_typed(c) for c in " ".join(text.split())]
        num_spaced = num_tight = ideo_spaced = ideo_tight = 0
        for i, ch in enumerate(chars):
            if i == 0:
                continue
            prev = chars[i - 1]
            if ch == " ":
                continue
            spaced = prev == " " and i >= 2
            left = chars[i - 2] if spaced else prev
            if _number_boundary(left, ch):
                if spaced:
                    num_spaced += 1
                else:
                    num_tight += 1
            elif is_ideograph(left) and is_ideograph(ch):
                if spaced:
                    ideo_spaced += 1
                else:
                    ideo_tight += 1
        return LayoutSpaces(_dense(num_spaced, num_tight), _dense(ideo_spaced, ideo_tight))

    @property
    def any(self) -> bool:
        return self.around_numbers or self.between_ideographs

    def drops(self, left: str, right: str) -> bool:
        """Whether a space between these two characters is layout."""
        punct = (is_cjk_punct(left) and _wide(right)) or (_wide(left) and is_cjk_punct(right))
        if self.around_numbers and (_number_boundary(left, right) or punct):
            return True
        # letter-spaced text spaces every Chinese character, punctuation mark and number alike
        return self.between_ideographs and ((_wide(left) and _wide(right)) or _number_boundary(left, right))


NO_LAYOUT_SPACES = LayoutSpaces(False, False)


def _number_boundary(left: str, right: str) -> bool:
    return (_wide(left) and _numberish(right)) or (_numberish(left) and _wide(right))


def _dense(spaced: int, tight: int) -> bool:
    return spaced >= MIN_SPACED and spaced >= SPACED_SHARE * (spaced + tight)
