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

import re
import unicodedata
from dataclasses import dataclass

_IDEOGRAPH_FORM_RANGES = ((0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_UNIFIED = "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U000323af"
_PUNCT = "\u3001-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65“”‘’…—"
_IDEOGRAPH_RE = re.compile(f"[{_UNIFIED}]")
_PUNCT_RE = re.compile(f"[{_PUNCT}]")
_FULLWIDTH_ALNUM = ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
_FULLWIDTH_SHIFT = 0xFEE0


def _ideograph_table() -> dict[str, str]:
    table = {}
    for a, b in _IDEOGRAPH_FORM_RANGES:
        for cp in range(a, b + 1):
            target = unicodedata.normalize("NFKC", chr(cp))
            if target != chr(cp) and len(target) == 1 and _IDEOGRAPH_RE.match(target):
                table[chr(cp)] = target
    return table


IDEOGRAPH_FOLDS = _ideograph_table()  # one character for one: offsets stay exact
TYPED_FOLDS = {**IDEOGRAPH_FOLDS, **{chr(cp): chr(cp - _FULLWIDTH_SHIFT)
                                     for a, b in _FULLWIDTH_ALNUM for cp in range(a, b + 1)}}
_IDEOGRAPH_TRANSLATION = str.maketrans(IDEOGRAPH_FOLDS)
_TYPED_TRANSLATION = str.maketrans(TYPED_FOLDS)


def fold_ideograph(ch: str) -> str:
    """The unified ideograph a radical or compatibility form stands for; any other character as it is."""
    return IDEOGRAPH_FOLDS.get(ch, ch)


def fold_typed(ch: str) -> str:
    """fold_ideograph, and full-width ASCII letters and digits as ASCII."""
    return TYPED_FOLDS.get(ch, ch)


def fold_text(text: str, verbatim: bool = False) -> str:
    return text.translate(_IDEOGRAPH_TRANSLATION if verbatim else _TYPED_TRANSLATION)


# --- layout spaces ---------------------------------------------------------------------------------------------


def is_ideograph(ch: str) -> bool:
    return bool(_IDEOGRAPH_RE.match(ch))


def is_cjk_punct(ch: str) -> bool:
    """、。〈〉《》「」〔〕【】 and the full-width punctuation （），：；！？ (not full-width letters or digits)."""
    return bool(_PUNCT_RE.match(ch))


def _wide(ch: str) -> bool:
    return is_ideograph(ch) or is_cjk_punct(ch)


def _numberish(ch: str) -> bool:
    return "0" <= ch <= "9"


_W = f"[{_UNIFIED}{_PUNCT}]"
_NUM_SPACED = re.compile(f"(?={_W} [0-9]|[0-9] {_W})")  # lookaheads: overlapping boundaries all count
_NUM_TIGHT = re.compile(f"(?={_W}[0-9]|[0-9]{_W})")
_IDEO_SPACED = re.compile(f"(?=[{_UNIFIED}] [{_UNIFIED}])")
_IDEO_TIGHT = re.compile(f"(?=[{_UNIFIED}][{_UNIFIED}])")


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
        """Count spaced and tight boundaries in the document (whitespace runs and line breaks count as one space)."""
        flat = fold_text(" ".join(text.split()))
        numbers = _dense(len(_NUM_SPACED.findall(flat)), len(_NUM_TIGHT.findall(flat)))
        ideographs = _dense(len(_IDEO_SPACED.findall(flat)), len(_IDEO_TIGHT.findall(flat)))
        return LayoutSpaces(numbers, ideographs)

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
