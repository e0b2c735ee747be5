"""Short answers pulled out of one sentence: numbers with their units, names after a role, organisations and
places ending in what the question asks for, quoted names, dates. Spans are kept exactly as written."""

from __future__ import annotations

import re

from service.questions import HEADS, MEASURE_UNITS, QuestionInfo

_CN_DIGITS = "零一二两三四五六七八九十百千万亿"
NUMBER_RE = re.compile(
    r"(?:约|近|超过|超|逾|达到|达|共|累计|全部|仅)?"
    r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+(?=[万亿千百]?[多余]?[名个项条次家支所座户种类批方面级人万亿成]))"
    r"(?:[万亿千百]+)?(?:多|余)?"
    r"(?:%|％|名|个|人次|人|亿元|万元|元|平方米|公里|亩|项|条|次|家|支|所|座|户|本|期|场|班次|艘|件|岁|级|天|年|倍|辆|"
    r"类|种|批|方面|层|成|小时|分钟|米|号|趟)?"
    r"(?:以上|左右|多|余)?"
)
DATE_RE = re.compile(r"(?:\d{4}年)?\d{1,2}月(?:\d{1,2}日)?(?:\d{1,2}时)?|\d{4}年(?:\d{1,2}月)?|[上下]半年|今年|去年|年初|年底")
UNIT_RE = re.compile(r"(%|％|人次|名|个|人|亿元|万元|元|平方米|公里|亩|项|条|次|家|支|所|座|户|本|期|场|班次|艘|件|岁|级|天|"
                     r"倍|辆|类|种|批|方面|层|成|趟)")
_DIGIT = re.compile(r"[\d一二两三四五六七八九十]")
_NAME_END = (r"(?=[，。、；：,;:\s“”（）()]|说|表示|指出|强调|介绍|认为|建议|参加|出席|主持|带队|陪同|直击|提出|就|在|对|为|"
             r"作|等|和|的|一行|同志|调研|$)")
ROLE_NAME_RE = re.compile(
    r"(?:书记|市长|副市长|区长|主任|负责人|代表|部长|局长|委员|经理|女士|先生|大叔|记者|专家|校长|院长)"
    r"[ \u3000·]?([\u4e00-\u9fff]{2,3}?)" + _NAME_END)
QUOTED_RE = re.compile(r"“([^”]{2,30})”|《([^》]{2,40})》")
ORG_RE = re.compile(r"[\u4e00-\u9fff“”（）()]{2,24}?(?:党委|党支部|党组织|公司|中心|实验室|银行|分行|局|部门|协会|学校|"
                    r"委员会|工作专班|服务队|党校|驿站)")
PLACE_RE = re.compile(r"[\u4e00-\u9fff]{2,8}?(?:区|镇|村|县|街道|社区|市|岛|站|公园|广场)")
_DASH_NAME_RE = re.compile(r"——([^，。；、“”\s]{2,20})")
_LEAD_TRIM = re.compile(r"^.*[的是由在与和及将向从把为、，]")


def unit_of(span: str) -> str:
    m = UNIT_RE.search(span)
    return m.group(1) if m else ""


def number_spans(text: str) -> list[re.Match[str]]:
    """Quantities in a sentence, leaving out years and the parts of dates (9月, 12日)."""
    out = []
    for m in NUMBER_RE.finditer(text):
        span = m.group(0)
        if not _DIGIT.search(span) or re.fullmatch(r"(?:19|20)\d{2}年?", span):
            continue
        nxt = text[m.end():m.end() + 1]
        if not unit_of(span) and nxt and nxt in "月日时号点年届":
            continue
        if text[max(0, m.start() - 1):m.start()] == "第" and not unit_of(span):
            continue
        out.append(m)
    return out


def counts(text: str, m: re.Match[str], noun: str | None) -> bool:
    """The number is followed by what the question counts ('1383名党员' for 多少党员)."""
    return noun is not None and noun in text[m.end():m.end() + len(noun) + 2]


def is_rate(text: str, m: re.Match[str]) -> bool:
    """'每个网格内配备1名网格长、1名专职网格员': numbers per unit, not totals (每 earlier in the clause)."""
    clause = re.split(r"[，。；,;！？]", text[:m.start()])[-1]
    return "每" in clause


# Common Chinese surnames: a "name" after a role that starts with none of these is an ordinary word (市长工作).
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟"
    "谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤聂区甄关麦伍岑温欧"
    "骆庞容司卓凌翁简甘柯涂詹蓝童池")


def role_names(text: str, role: str | None) -> list[tuple[int, str]]:
    """(position, name) of people named right after the role ('副市长周佩珊参加调研')."""
    return [(i, n) for i, n in _role_names(text, role) if n[0] in SURNAMES]


def _role_names(text: str, role: str | None) -> list[tuple[int, str]]:
    if role is None:
        return [(m.start(1), m.group(1)) for m in ROLE_NAME_RE.finditer(text)]
    pat = re.compile(re.escape(role) + r"[ \u3000·]?([\u4e00-\u9fff]{2,3}?)" + _NAME_END)
    found = [(m.start(1), m.group(1)) for m in pat.finditer(text)]
    # "以江海区委书记聂加伟为组长": the name comes first
    found += [(m.start(1), m.group(1)) for m in re.finditer(r"([\u4e00-\u9fff]{3})(?:为|任|担任)" + re.escape(role), text)]
    return found


def head_spans(text: str, head: str) -> list[tuple[int, str]]:
    """Names ending with what the question asks for (哪家企业 → …公司), trimmed at the last function word."""
    endings = "|".join(sorted(HEADS[head], key=len, reverse=True))
    out = []
    for m in re.finditer(r"[\u4e00-\u9fffA-Za-z0-9“”（）()]{2,30}?(?:" + endings + ")", text):
        span = _LEAD_TRIM.sub("", m.group(0)).strip("“”（）()")
        if len(span) >= 3 and span not in HEADS[head] and not _DIGIT.match(span):
            out.append((m.end() - len(span), span))
    return out


def _nearest(items: list[tuple[int, str]], anchors: list[int]) -> str:
    return min(items, key=lambda it: min((abs(a - it[0]) for a in anchors), default=0))[1]


def fits_constraint(info: QuestionInfo, text: str) -> bool:
    """Whether a sentence can answer the question's explicit slot (role, measure, head noun)."""
    if info.role:
        return any(name not in info.text for _, name in role_names(text, info.role))
    if info.measure:
        return bool(MEASURE_UNITS[info.measure].search(text))
    if info.head:
        return any(span not in info.text for _, span in head_spans(text, info.head))
    return True


def short_answer(info: QuestionInfo, text: str) -> str | None:
    """The shortest span of `text` answering the question's type, or None."""
    q = info.text
    kind = info.answer_type
    anchors = [text.find(w) for w in info.keywords if w in text]
    if kind == "number":
        if info.measure:
            ms = [(m.start(), m.group(0)) for m in MEASURE_UNITS[info.measure].finditer(text) if m.group(0) not in q]
            if not ms:
                return None
            pos, _ = min(ms, key=lambda it: min((abs(a - it[0]) for a in anchors), default=0))
            # widen to the whole quantity as written ("60%以上", "珠三角第一")
            for m in number_spans(text):
                if m.start() <= pos < m.end():
                    return m.group(0)
            whole = re.match(r"第[一二三四五六七八九十\d]+|[^，。；、\s]{0,12}", text[pos:])
            return whole.group(0) if whole else None
        spans = [m for m in number_spans(text) if m.group(0) not in q]
        if not spans:
            return None
        per_unit = "每" in q

        def rank(m: re.Match[str]) -> tuple[float, float, float, int]:
            counted = 1.0 if counts(text, m, info.counted) else 0.0
            unit_ok = 1.0 if info.unit and (info.unit in m.group(0) or unit_of(m.group(0)) == info.unit) else 0.0
            rate = 0.0 if per_unit or not is_rate(text, m) else 1.0
            dist = min((abs(a - m.start()) for a in anchors), default=50)
            return (-counted, -unit_ok, rate, dist)

        return min(spans, key=rank).group(0)
    if kind == "date":
        dates = [m.group(0) for m in DATE_RE.finditer(text) if m.group(0) not in q]
        return dates[0] if dates else None
    if kind == "person":
        names = [(i, n) for i, n in role_names(text, info.role) if n not in q]
        return _nearest(names, anchors) if names else None
    if info.head:
        heads = [(i, s) for i, s in head_spans(text, info.head) if s not in q]
        return _nearest(heads, anchors) if heads else None
    pattern = {"organization": ORG_RE, "place": PLACE_RE}.get(kind)
    if pattern is not None:
        for m in pattern.finditer(text):
            span = m.group(0).strip("“”（）()")
            if span not in q and len(span) >= 3:
                return span
        return None
    if kind in ("name", "other"):
        quoted = [(m.start(), m.group(0)) for m in QUOTED_RE.finditer(text)
                  if (m.group(1) or m.group(2)) not in q]
        # "建成全省首家新型侨资企业党校——雁图仕党委党校": the name after a dash
        quoted += [(m.start(1), m.group(1)) for m in _DASH_NAME_RE.finditer(text) if m.group(1) not in q]
        return _nearest(quoted, anchors) if quoted else None
    return None


def cn_number_value(text: str) -> float | None:
    """Numeric value of '21万多', '22.6亿', '三千', '两万' (for comparing values across documents)."""
    m = re.search(r"(\d+(?:\.\d+)?)([万亿千百]*)", text)
    if m:
        value = float(m.group(1))
        for ch in m.group(2):
            value *= {"万": 1e4, "亿": 1e8, "千": 1e3, "百": 1e2}[ch]
        return value
    m2 = re.search(f"[{_CN_DIGITS}]+", text)
    if not m2:
        return None
    digits = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
    units = {"十": 10, "百": 100, "千": 1000}
    total, section, num = 0.0, 0.0, 0.0
    for ch in m2.group(0):
        if ch in digits:
            num = digits[ch]
        elif ch in units:
            section += (num or 1) * units[ch]
            num = 0
        elif ch in ("万", "亿"):
            total += (section + num) * (1e4 if ch == "万" else 1e8)
            section, num = 0, 0
    return total + section + num
