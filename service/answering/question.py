"""What a Chinese question pins down (years, places, periods, quoted names) and what kind of answer it wants.

The reader finds the answer; this only feeds the filters (an answer must hold what the question pins down)
and the composition (a short fact, or sentences for why/how/list questions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.gazetteer import load_gazetteer, load_roles
from index.segmentation import Segmenter

# Order matters: the first pattern that matches decides the type.
_TYPE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("why", re.compile(r"为什么|为何|原因|为啥|何以")),
    ("list", re.compile(r"哪几(?!年|月|天|号)")),
    ("date", re.compile(r"什么时候|何时|哪一年|哪年|几月|哪天|哪一天|什么时间|几号|何日|哪个月|什么日子")),
    ("number", re.compile(r"多少|几[个名项条次年支家类种级批所座户期场人岁天倍成趟辆艘班列位]|几方面|多大|多长|多高|多远|多重|"
                          r"比例|百分之几|占比|增幅|增长了?几|第几|多少钱|票价|股价|利率")),
    ("person", re.compile(r"谁|哪位|何人|什么人|叫什么名字|姓名")),
    ("list", re.compile(r"哪些|有哪几|包括什么|包括哪|包含哪|主要有|分别是|分别为")),
    ("how", re.compile(r"如何|怎样|怎么|什么措施|什么办法|哪种方式|什么方式|做法|举措|怎么做")),
    ("organization", re.compile(r"哪个(?:单位|部门|机构|企业|公司|组织|党委|党支部|银行|行业)|哪家|"
                                r"什么(?:单位|部门|机构|组织|企业)|由谁")),
    ("place", re.compile(r"哪里|哪儿|在哪|何地|什么地方|哪个(?:区|镇|村|市|县|街道|地方|社区|城市|方向|站|岛)|"
                         r"哪座|哪片")),
    ("yesno", re.compile(r"是否|吗[？?]?$|有没有|是不是|能否")),
    ("name", re.compile(r"叫什么|什么名称|名称|什么|哪个|哪一|何种")),
)
FACTOID_TYPES = frozenset({"number", "person", "place", "organization", "name", "date"})
EXPLANATORY_TYPES = frozenset({"why", "how", "list"})  # answered with sentences, not one short fact

_PERIOD_RE = re.compile(r"十[一二三四五六七八九]?五")  # 五年规划 periods: “十三五”, “十四五”
_ORDINAL_RE = re.compile(r"第[一二三四五六七八九十\d]+(?:批|届|次|期|轮|季度)")
_QUOTED_Q_RE = re.compile(r"“([^”]{1,30})”|《([^》]{1,40})》")
_YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年?")
# a period the question asks about (1993-1996期间, 2010-2011赛季): evidence from any year of it will do
YEAR_RANGE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年?\s*[-–—~～至到/]\s*((?:19|20)?\d{2})(?!\d)")
_PLACE_WORD_RE = re.compile(r"^[\u4e00-\u9fff]{1,5}(?:区|镇|村|县|街道|岛)$")
_NOT_PLACE = frozenset({"小区", "社区", "城区", "园区", "全区", "全市", "农村", "乡村", "山区", "景区", "片区", "辖区",
                        "商圈", "试验区", "示范区", "实验区", "该区", "本区", "各区", "新区", "乡镇", "村镇", "圩镇",
                        "主城区", "老城区", "市区", "郊区", "驻区", "行政村", "自然村", "城镇"})
# Words that only shape the question; they are not evidence to look for.
QUESTION_WORDS = frozenset({
    "多少", "几", "什么", "哪些", "哪个", "哪里", "哪儿", "谁", "如何", "怎样", "怎么", "为什么", "为何", "是否", "吗",
    "请问", "一下", "呢", "哪", "哪位", "何时", "什么时候", "多大", "多长", "有没有", "是不是", "分别", "主要", "具体",
    "名", "个", "人", "年", "目前", "现在", "当时", "共有", "一共", "总共", "共", "了", "有", "是", "在", "的", "哪家",
    "叫", "叫做", "称为", "哪一年", "哪年", "哪天", "几月", "包括", "哪几", "情况", "介绍", "说说", "告诉", "我",
    "多长时间", "多久", "大约", "大概", "左右", "如今", "至今", "哪方面", "哪种",
})
# Words that make a quantity a rate (日均到发旅客): the evidence must say the same rate, in one of its words.
RATE_WORDS: tuple[tuple[str, ...], ...] = (
    ("日均", "每天", "每日", "平均每天", "平均每日"), ("年均", "每年", "平均每年"), ("月均", "每月", "平均每月"),
    ("人均", "每人"), ("单日", "单天"), ("平均",),
)
# measure words a count is asked and given in (多少名 … 21万多名)
MEASURES = r"人次|平方米|平方公里|公里|万元|亿元|[名个位人元项条次家支所座户本期场艘件岁天倍辆类种批亩]"
_ASKED_UNIT_RE = re.compile(rf"(?:多少|几)({MEASURES})")
# a sum of money asked without a measure word (多少资金, 总预算是多少) is counted in 元, as a count of people
# (多少党员, 多少志愿者) is in 名
_MONEY_WORDS = ("资金", "钱", "经费", "投资", "金额", "费用", "预算", "资产", "产值", "收入", "营收", "营业额", "成本",
                "工资", "奖金", "补贴", "授信", "价")
# what a "…是多少" question asks the amount of (总预算 in 《行动方案》的总预算是多少)
_MEASURED_RE = re.compile(r"([\u4e00-\u9fff]{2,12}?)(?:大约|大概|约)?(?:是|为|有|达到|达)多少[？?。]?$")
# a year the question compares with (比2023年增加了多少), not the year its facts are from
_COMPARED_YEAR_RE = re.compile(r"(?<=[比较])((?:19|20)\d{2})年?|(?<=[与和同跟])((?:19|20)\d{2})年?(?:同期)?相比")
# a price per unit (多少钱一斤, 每公斤的价格): the evidence must give it per that unit
_UNIT_PRICE_RE = re.compile(r"多少钱[一每](公斤|平方米|[\u4e00-\u9fff])|每(公斤|平方米|[\u4e00-\u9fff])的?(?:多少钱|价格|售价)")
# a quantity the question states (那座3200平方米的党群服务中心, 给予3.5亿元授信额度): it names what the question is about
_STATED_RE = re.compile(r"(?<![\d.])\d+(?:\.\d+)?[万亿千百]*(?:平方米|平方公里|公里|万元|亿元|元|人次|名|家|支|所|项|条|个)")
_FUTURE_RE = re.compile(r"明天|明日|后天|下周|下星期|下礼拜|下个月|今晚|明晚|未来几天|接下来几天")


@dataclass(frozen=True)
class QuestionInfo:
    text: str
    answer_type: str
    years: tuple[str, ...]
    places: tuple[str, ...]
    keywords: tuple[str, ...]
    periods: tuple[str, ...] = ()  # 十四五 ...
    ordinals: tuple[str, ...] = ()  # 第二批 ...
    quoted: tuple[str, ...] = ()  # names the question puts in quotes (“质量月”, 《行动方案》)
    any_place: bool = False  # places joined by 和/与 (compare 江海区 and 江城区): one per sentence suffices
    year_ranges: tuple[tuple[int, int], ...] = ()  # periods (1993-1996期间), their end years not in `years`
    rates: tuple[tuple[str, ...], ...] = ()  # the RATE_WORDS groups the question names (日均 …)
    unit: str | None = None  # the measure word a count is asked in (名 in 多少名党员)
    counted: tuple[str, ...] = ()  # what that count counts: the words after the unit (多少名|党员, 多少辆|网约|专车)
    role: str | None = None  # the post whose holder a person question asks for (组织部部长 in 江门市委组织部部长是谁)
    compared: tuple[str, ...] = ()  # years the question compares with (2023 in 比2023年增加了多少个)
    stated: tuple[str, ...] = ()  # quantities the question states (3200平方米 in 那座3200平方米的党群服务中心)

    @property
    def factoid(self) -> bool:
        return self.answer_type in FACTOID_TYPES

    @property
    def explanatory(self) -> bool:
        return self.answer_type in EXPLANATORY_TYPES


def answer_type(question: str) -> str:
    for name, pat in _TYPE_PATTERNS:
        m = pat.search(question)
        if m and name == "person" and m.group(0) == "叫什么名字" and not _names_person(question[:m.start()]):
            continue  # "服务台叫什么名字" asks for the name of a thing
        if m:
            return name
    return "other"


def _names_person(text: str) -> bool:
    return bool(re.search(r"书记|市长|区长|主任|负责人|代表|部长|局长|[他她]|这位|那位|同志|女士|先生|阿姨|大叔", text))


def asks_future(question: str) -> bool:
    """'明天江门会下雨吗': the library holds published articles, which cannot know what comes next."""
    return bool(_FUTURE_RE.search(question))


def reader_question(question: str, segmenter: Segmenter) -> str:
    """The question as the reader reads it: a place alias standing as a word of its own (侨都, 侨乡, 五邑 →
    江门) becomes the name the articles use, which the reader, trained on DRCD, could not know. Kept: an alias
    inside a longer word (中国侨都, 侨都质量贷: the lexicon's words) or inside quotes (“五邑之窗”)."""
    gazetteer = load_gazetteer()
    if not any(a in question for a in gazetteer.place_aliases):
        return question
    quoted = [m.span() for m in _QUOTED_Q_RE.finditer(question)]
    out, last = [], 0
    for a, b in segmenter.word_spans(question):
        word = question[a:b]
        if word in gazetteer.place_aliases and not any(s <= a < e for s, e in quoted):
            out += [question[last:a], gazetteer.aliases[word][0]]
            last = b
    return "".join(out) + question[last:]


def analyse(question: str, segmenter: Segmenter) -> QuestionInfo:
    q = question.strip()
    gazetteer = load_gazetteer()
    places = [p for p in gazetteer.places if p in q]
    words = segmenter.words(q)
    for w in words:
        # a named district/town/village (jieba word such as 新会区, 杜阮镇), not a generic one (小区, 全区)
        if _PLACE_WORD_RE.match(w) and w not in _NOT_PLACE and not w.endswith(("小区", "地区")) \
                and not segmenter.common_word(_place_stem(w)) and not any(w in p or p in w for p in places):
            places.append(w)
    keywords = [w for w in segmenter.content_words(q)
                if w not in QUESTION_WORDS and (len(w) >= 2 or w.isdigit())
                and not re.fullmatch(r"(?:19|20)\d{2}", w)]  # years are checked separately
    ranges = tuple(dict.fromkeys(r for m in YEAR_RANGE_RE.finditer(q) if (r := year_range(m)) is not None))
    in_range = {str(y) for a, b in ranges for y in (a, b)}
    compared = {a or b for a, b in _COMPARED_YEAR_RE.findall(q)}
    years = [y for y in dict.fromkeys(_YEAR_RE.findall(q)) if y not in in_range and y not in compared]
    kind = answer_type(q)
    unit, counted = _asked_measure(q, kind, segmenter)
    return QuestionInfo(q, kind, tuple(years), tuple(dict.fromkeys(places)),
                        tuple(dict.fromkeys(keywords)),
                        periods=tuple(dict.fromkeys(_PERIOD_RE.findall(q))),
                        ordinals=tuple(dict.fromkeys(_ORDINAL_RE.findall(q))),
                        quoted=tuple(dict.fromkeys(a or b for a, b in _QUOTED_Q_RE.findall(q))),
                        any_place=len(places) > 1 and bool(re.search(r"[和与及、]|都|分别|两|又|[？?；;].", q)),
                        year_ranges=ranges, rates=_rates(q), unit=unit, counted=counted, role=asked_role(q),
                        compared=tuple(sorted(compared)), stated=tuple(dict.fromkeys(_STATED_RE.findall(q))))


def _asked_measure(q: str, kind: str, segmenter: Segmenter) -> tuple[str | None, tuple[str, ...]]:
    """The measure word a count is asked in and what it counts: 多少名|党员; 多少资金 or 总预算是多少 (元); 多少党员
    (名, 党员). What a "…是多少" question measures is not required in the evidence: it is often said another
    way (体长 … 长89厘米)."""
    m = _ASKED_UNIT_RE.search(q)
    if m:
        return m.group(1), _counted(q[m.end():], segmenter)
    if kind != "number":
        return None, ()
    if any(f"多少{w}" in q for w in _MONEY_WORDS):
        return "元", ()
    m = re.search("多少", q)
    after = [w for w in segmenter.content_words(q[m.end():]) if w not in QUESTION_WORDS] if m else []
    if after and len(after[0]) >= 2 and after[0].endswith(("员", "者")):
        return "名", (after[0],)
    m = _MEASURED_RE.search(q)
    words = [w for w in segmenter.content_words(m.group(1)) if w not in QUESTION_WORDS] if m else []
    if words and any(w in words[-1] for w in _MONEY_WORDS):  # the head word: 预算 of 总预算, 金额 of 投资金额
        return "元", ()
    return None, ()


_WHO_AFTER_RE = re.compile(r"是谁|是哪位|叫什么名字|姓名|是何人|是什么人")


def asked_role(question: str) -> str | None:
    """The post a question asks the holder of: just before 是谁 (江门市委组织部部长是谁), just after 哪位
    (哪位副市长参加了调研) or closing 谁是… (谁是江门市委书记); posts are data (index/lexicon/roles.txt)."""
    roles = load_roles()
    m = _WHO_AFTER_RE.search(question)
    if m:
        before = question[:m.start()].rstrip("的")
        found = next((r for r in roles if before.endswith(r)), None)
        if found:
            return found
    m = re.search("哪位|哪一位", question)
    if m:
        return next((r for r in roles if question.startswith(r, m.end())), None)
    m = re.search("谁是", question)  # 谁是江门市委书记
    if m:
        rest = question[m.end():].rstrip("？?。 ")
        return next((r for r in roles if rest.endswith(r)), None)
    return None


def year_range(m: re.Match[str]) -> tuple[int, int] | None:
    """The years a YEAR_RANGE_RE match spans (2010-11 → 2010..2011); None when it is not a forward period of
    at most 50 years."""
    first, last = m.group(1), m.group(2)
    end = int(first[:2] + last) if len(last) == 2 else int(last)
    return (int(first), end) if 0 < end - int(first) <= 50 else None


def _place_stem(word: str) -> str:
    """The name part of a place word: 杜阮镇 → 杜阮, 白沙街道 → 白沙; a common word there (气候区, 撤县, 工业区) makes it
    a kind of area or a verb phrase, not a named place."""
    return word[:-2] if word.endswith("街道") else word[:-1]


def _counted(after_unit: str, segmenter: Segmenter) -> tuple[str, ...]:
    """The first two content words after the asked unit, when the first has two or more characters."""
    words = [w for w in segmenter.content_words(after_unit) if w not in QUESTION_WORDS]
    return tuple(words[:2]) if words and len(words[0]) >= 2 else ()


def _rates(question: str) -> tuple[tuple[str, ...], ...]:
    named = [g for g in RATE_WORDS if any(w in question for w in g)]
    specific = [g for g in named if g != ("平均",)]
    m = _UNIT_PRICE_RE.search(question)
    if m:  # 多少钱一斤 asks a price per 斤, which an industry's 102亿元 does not answer
        u = m.group(1) or m.group(2)
        specific.append((f"每{u}", f"一{u}", f"/{u}"))
    return tuple(specific or named)  # 平均每天 is the 日均 rate, not a second one


_NUMERAL_RE = re.compile(r"[\d零一二两三四五六七八九十百千万亿几多半]")
_DATE_RE = re.compile(r"\d|[年月日时天周]|世纪|年代|[春夏秋冬]季|[上下]旬|[初底末]")
_PERSON_RE = re.compile(r"[\u4e00-\u9fff]{2,4}|[\u4e00-\u9fff]{1,6}·[\u4e00-\u9fff]{1,8}|[A-Za-z][A-Za-z .\-]{1,40}")


def fits_type(answer_type: str, span: str) -> bool:
    """Whether a span can be the kind of answer asked for: a count holds a numeral, a date a time word, a
    person's name is short. A signal for the confidence model, never a reason to pick a span."""
    if answer_type == "number":
        return bool(_NUMERAL_RE.search(span))
    if answer_type == "date":
        return bool(_DATE_RE.search(span))
    if answer_type == "person":
        return bool(_PERSON_RE.fullmatch(span.strip("“”\"'")))
    return True
