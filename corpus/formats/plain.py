"""Text decoding (UTF-8, UTF-16, GBK/GB18030, whatever charset_normalizer finds) and plain-text documents."""

from __future__ import annotations

import codecs
import re

from corpus.formats.base import Extracted, FormatError, TextBuilder

# GB2312 and GBK are subsets of GB18030: decoding with the superset never fails on a mislabelled page.
_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030",
            "cp936": "gb18030", "euc-cn": "gb18030", "big5": "big5hkscs"}
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)\s*#*\s*$")


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode(data: bytes, filename: str, declared: str | None = None) -> tuple[str, str]:
    """(text, encoding used). A BOM wins, then a declared charset that decodes cleanly, then UTF-8, then
    charset_normalizer's guess, then GB18030. Raises FormatError when nothing decodes."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc), enc
            except UnicodeDecodeError:
                break
    candidates = [c for c in (_codec(declared), "utf-8") if c]
    for enc in candidates:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        guess = _codec(best.encoding) if best is not None else None
    except ImportError:  # pragma: no cover - a declared dependency
        guess = None
    for enc in [c for c in (guess, "gb18030") if c]:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise FormatError("bad_encoding", filename, "无法识别文本编码（试过 UTF-8、GB18030 等）",
                      "cannot tell the text encoding (tried UTF-8, GB18030 and others)")


def extract_text(data: bytes, filename: str) -> Extracted:
    """A plain-text or Markdown file without front matter: paragraphs as they are, `#` lines as sections."""
    text, _ = decode(data, filename)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    b = TextBuilder()
    para: list[str] = []

    def flush() -> None:
        if para:
            b.block([("\n".join(para), None)])
            para.clear()

    for line in text.split("\n"):
        m = _MD_HEADING.match(line.strip())
        if m:
            flush()
            b.heading(m.group(2), len(m.group(1)))
        elif line.strip():
            para.append(line.strip())
        else:
            flush()
    flush()
    first = next((ln.strip().lstrip("#").strip() for ln in text.split("\n") if ln.strip()), "")
    return b.build("text", {"title": first[:120]} if first else {})
