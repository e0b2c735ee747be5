"""List numbering Word draws in front of a paragraph (第一条, （一）, 1.), which is in no run of the text.

Regulations often number their articles and items this way, so without it the text loses "第一条". Both
Word readers describe a list level the same way (Level) and count with one Counter: per list, a level's
number goes up by one at each paragraph on it and the deeper levels start again. Formats by their
WordprocessingML names ([MS-DOC] nfc codes are mapped to them); a bullet draws no text here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_DIGITS = "零一二三四五六七八九"
_LEGAL = "零壹贰叁肆伍陆柒捌玖"
_TIANGAN = "甲乙丙丁戊己庚辛壬癸"
_FOLLOW = {"tab": " ", "space": " ", "nothing": ""}  # a tab after a label is layout: one space in the text

# [MS-DOC] nfc (MSONFC) → the WordprocessingML name of the same format
NFC_NAMES = {0: "decimal", 1: "upperRoman", 2: "lowerRoman", 3: "upperLetter", 4: "lowerLetter", 10: "ideographDigital",
             11: "japaneseCounting", 14: "decimalFullWidth", 18: "decimalEnclosedCircle", 19: "decimalFullWidth2",
             22: "decimalZero", 23: "bullet", 26: "decimalEnclosedFullstop", 27: "decimalEnclosedParen",
             28: "decimalEnclosedCircleChinese", 29: "ideographEnclosedCircle", 30: "ideographTraditional",
             33: "taiwaneseCounting", 37: "chineseCounting", 38: "chineseLegalSimplified",
             39: "chineseCountingThousand", 255: "none"}


def _counting(n: int, digits: str = _DIGITS, ten: str = "十", hundred: str = "百", thousand: str = "千") -> str:
    """一, 十, 十一, 二十一, 一百零一, 一百一十 (Word's chineseCounting)."""
    if n < 10:
        return digits[n]
    if n < 20 and digits is _DIGITS:
        return ten + (digits[n % 10] if n % 10 else "")
    if n < 100:
        return digits[n // 10] + ten + (digits[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        tail = "" if rest == 0 else digits[0] + digits[rest] if rest < 10 else (
            digits[rest // 10] + ten + (digits[rest % 10] if rest % 10 else ""))
        return digits[n // 100] + hundred + tail
    if n < 10000:
        rest = n % 1000
        tail = "" if rest == 0 else (digits[0] if rest < 100 else "") + _counting(rest, digits, ten, hundred, thousand)
        return digits[n // 1000] + thousand + tail
    return str(n)


def _roman(n: int) -> str:
    out = []
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                           (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out.append(letters)
            n -= value
    return "".join(out)


def format_number(n: int, fmt: str) -> str:
    if fmt in ("chineseCounting", "chineseCountingThousand", "japaneseCounting", "taiwaneseCounting"):
        return _counting(n)
    if fmt == "chineseLegalSimplified":
        return _counting(n, _LEGAL, "拾", "佰", "仟")
    if fmt == "ideographDigital":
        return "".join(_DIGITS[int(d)] for d in str(n)).replace("零", "〇")
    if fmt == "ideographTraditional" and 1 <= n <= 10:
        return _TIANGAN[n - 1]
    if fmt in ("upperRoman", "lowerRoman"):
        r = _roman(n)
        return r if fmt == "upperRoman" else r.lower()
    if fmt in ("upperLetter", "lowerLetter") and n >= 1:
        letter = chr(ord("A") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter if fmt == "upperLetter" else letter.lower()
    if fmt in ("decimalFullWidth", "decimalFullWidth2"):
        return "".join(chr(ord(d) - ord("0") + 0xFF10) for d in str(n))
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt in ("decimalEnclosedCircle", "decimalEnclosedCircleChinese") and 1 <= n <= 20:
        return chr(0x2460 + n - 1)
    if fmt == "decimalEnclosedParen" and 1 <= n <= 20:
        return chr(0x2474 + n - 1)
    if fmt == "decimalEnclosedFullstop" and 1 <= n <= 20:
        return chr(0x2488 + n - 1)
    if fmt == "ideographEnclosedCircle" and 1 <= n <= 10:
        return chr(0x3220 + n - 1)
    return str(n)


@dataclass(frozen=True)
class Level:
    """One level of a list: `text` holds the label with a placeholder (the int 0–8) for each level's number."""

    start: int
    fmt: str
    text: tuple[str | int, ...]
    follow: str = "tab"  # tab | space | nothing
    legal: bool = False  # every number in arabic digits


@dataclass
class Counter:
    """Counts the paragraphs of each list; `label` gives the text Word draws before the next one."""

    lists: dict[str, tuple[Level, ...]]
    counts: dict[str, list[int | None]] = field(default_factory=dict)

    def label(self, list_id: str, ilvl: int) -> str:
        levels = self.lists.get(list_id)
        if not levels:
            return ""
        ilvl = max(0, min(ilvl, len(levels) - 1))
        level = levels[ilvl]
        counts = self.counts.setdefault(list_id, [None] * 9)
        prev = counts[ilvl]
        counts[ilvl] = level.start if prev is None else prev + 1
        for deeper in range(ilvl + 1, 9):
            counts[deeper] = None
        if level.fmt in ("bullet", "none"):
            return ""
        parts = []
        for piece in level.text:
            if isinstance(piece, str):
                parts.append(piece)
            elif piece < len(levels):
                n = counts[piece]
                n = levels[piece].start if n is None else n
                fmt = "decimal" if level.legal and piece != ilvl else levels[piece].fmt
                parts.append(format_number(n, fmt))
        text = "".join(parts).strip()
        return text + _FOLLOW.get(level.follow, " ") if text else ""
