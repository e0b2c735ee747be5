"""Policy-document metadata found in the text: 发文字号, 发文机关, 成文日期, 发布日期, 施行日期, 有效期.

Keys stored in the front matter (English, like the rest of it): doc_number, issuer, written_date,
published_date, effective_date, validity. Dates are ISO (YYYY-MM-DD).
"""

from __future__ import annotations

import re

# 江府〔2024〕12号, 粤府办[2023]5号, 国发（2024）1号, 江门市人民政府令第12号 is not matched (no year)
DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,12}\s*[〔\[［(（【]\s*((?:19|20)\d{2})\s*[〕\]］)）】]\s*第?\s*\d{1,4}\s*号")
_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "十": 10}
_DATE = r"((?:19|20)\d{2}\s*[年\-/.]\s*\d{1,2}\s*[月\-/.]\s*\d{1,2}\s*日?|[〇○零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,3}月[一二三四五六七八九十]{1,3}日)"
DATE_RE = re.compile(_DATE)
_SEP = r"\s*[:：|｜]?\s*"  # "发文字号：…" or an info-table row "发文字号 | …"
_LABELS: tuple[tuple[str, str], ...] = (
    ("doc_number", r"(?:发文字号|文\s*号)"),
    ("issuer", r"(?:发文机关|发布机构|发文单位|发布单位|制发机关)"),
    ("written_date", r"(?:成文日期|印发日期)"),
    ("published_date", r"(?:发布日期|发文日期|公布日期)"),
    ("effective_date", r"(?:施行日期|实施日期|生效日期)"),
    ("validity", r"(?:有效期)"),
)
_EFFECTIVE_INLINE = re.compile(r"自\s*" + _DATE + r"\s*起(?:施行|实施|执行|生效)")
_VALIDITY_INLINE = re.compile(r"有效期(?:为|至)?\s*([^，。；;\n]{1,30})")
_ISSUER_LINE = re.compile(r"^[\u4e00-\u9fff（）()]{4,40}(?:人民政府|委员会|办公室|办公厅|政府|局|厅|部|委|院|中心|会)$")


def iso_date(text: str) -> str | None:
    """`2024年1月15日`, `2024-01-15`, `二〇二四年一月十五日` → `2024-01-15` (None when not a real date)."""
    import datetime as dt

    text = text.strip()
    m = re.match(r"((?:19|20)\d{2})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})", text)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = re.match(r"([〇○零一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})日", text)
        if not m:
            return None
        y = int("".join(str(_CN_DIGITS[c]) for c in m.group(1)))
        mo, d = _cn_number(m.group(2)), _cn_number(m.group(3))
    try:
        return dt.date(y, mo, d).isoformat()
    except ValueError:
        return None


def _cn_number(s: str) -> int:
    if s == "十":
        return 10
    if "十" in s:
        tens, _, units = s.partition("十")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)
    return _CN_DIGITS[s]


def find_policy_metadata(text: str) -> dict[str, str]:
    """Labelled fields first (an info table: 发文字号：…), then what the text itself shows."""
    out: dict[str, str] = {}
    head = text[:4000]
    tail = text[-1500:]
    for key, label in _LABELS:
        m = re.search(label + _SEP + r"([^\n|｜]{1,60})", head)
        if not m:
            continue
        value = m.group(1).strip()
        if key.endswith("_date"):
            d = DATE_RE.search(value)
            iso = iso_date(d.group(1)) if d else None
            if iso:
                out[key] = iso
        elif key == "doc_number":
            n = DOC_NUMBER.search(value)
            if n:
                out[key] = re.sub(r"\s+", "", n.group(0))
        elif value:
            out[key] = re.split(r"\s{2,}|\t", value)[0][:60]
    if "doc_number" not in out:
        n = DOC_NUMBER.search(head)
        if n:
            out["doc_number"] = re.sub(r"\s+", "", n.group(0))
    if "effective_date" not in out:
        m = _EFFECTIVE_INLINE.search(text)
        iso = iso_date(m.group(1)) if m else None
        if iso:
            out["effective_date"] = iso
    if "validity" not in out:
        m = _VALIDITY_INLINE.search(text)
        if m:
            out["validity"] = m.group(1).strip().rstrip("。.")
    # the signature at the end of a notice: the issuing body on one line, the date it was written below
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, 0, -1):
        if DATE_RE.fullmatch(lines[i]) and iso_date(lines[i]):
            if "written_date" not in out:
                out["written_date"] = iso_date(lines[i]) or ""
            if "issuer" not in out and _ISSUER_LINE.match(lines[i - 1]):
                out["issuer"] = lines[i - 1]
            break
    return out
