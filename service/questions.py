"""What a Chinese question asks for: answer type, unit, years, places and keywords."""

from __future__ import annotations

import re
from dataclasses import dataclass

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

_UNIT_RE = re.compile(
    r"(?:多少|几)(万|亿|千)?(名|个|人次|人|万人次|亿元|万元|元|平方米|公里|亩|项|条|次|家|支|所|座|户|本|期|场|班次|"
    r"艘|件|岁|级|天|年|倍|辆|类|种|批|方面|多期|层|名党员|趟|列|位)?")
# Explicit measures a number answer must carry; a number in another unit answers a different question.
_MEASURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("rank", re.compile(r"第几|排名第?几|排第几")),
    ("percent", re.compile(r"比例|占比|百分之几|比重|增幅|增速|增长率|利率|率是多少|多少成")),
    ("money", re.compile(r"多少钱|票价|价格|股价|费用|成本|花了多少|投资了?多少|多少资金|多少经费|损失")),
    ("duration", re.compile(r"多长时间|多久|几个?小时|多少小时|多少天|几天")),
    ("area", re.compile(r"面积|多大(?!比例)")),
    ("person_times", re.compile(r"多少人次|几人次")),
)
MEASURE_UNITS = {
    "rank": re.compile(r"第[一二三四五六七八九十\d]+"),
    "percent": re.compile(r"\d+(?:\.\d+)?\s*[%％]|[一二三四五六七八九十]成|百分之"),
    "money": re.compile(r"\d+(?:\.\d+)?\s*[万亿千百]*元|[一二两三四五六七八九十百千]+[万亿]*元"),
    "duration": re.compile(r"[\d一二两三四五六七八九十]+(?:\.\d+)?\s*(?:个?小时|天|个月|年|分钟|周)"),
    "area": re.compile(r"[\d一二两三四五六七八九十]+(?:\.\d+)?\s*[万千百]*(?:平方米|平方公里|亩|公顷)"),
    "person_times": re.compile(r"\d+(?:\.\d+)?\s*[万亿]*[多余]?人次"),
}
_PERIOD_RE = re.compile(r"十[一二三四五六七八九]?五")  # 五年规划 periods: “十三五”, “十四五”
_ORDINAL_RE = re.compile(r"第[一二三四五六七八九十\d]+(?:批|届|次|期|轮|季度)")
# Roles a 谁 question may ask for, longest first so 纪委书记 wins over 书记.
ROLES = tuple(sorted((
    "书记", "党委书记", "纪委书记", "区委书记", "市委书记", "县委书记", "镇委书记", "副书记", "市长", "副市长",
    "区长", "副区长", "县长", "镇长", "部长", "局长", "主任", "所长", "院长", "校长", "主席", "总经理", "董事长",
    "负责人", "站长", "馆长", "队长", "会长", "行长", "省人大代表", "市人大代表", "人大代表", "网格长", "专家",
    "组长", "支书", "理事长"), key=len, reverse=True))
_ROLE_SLOT_RE = re.compile(r"哪位|是谁|叫什么|是哪位|姓名|名字")
# What an organisation/place question asks for (哪家企业, 哪所学校) and the name endings that can answer it.
HEADS: dict[str, tuple[str, ...]] = {
    "企业": ("公司", "集团", "厂"),  # "…企业" is a category (小微企业), not a name
    "公司": ("公司", "集团"),
    "机构": ("院", "所", "中心", "局", "委员会", "办公室", "协会", "机构", "实验室", "部", "银行"),
    "单位": ("院", "所", "中心", "局", "委员会", "办公室", "协会", "学校", "公司", "部", "银行", "实验室"),
    "学校": ("学校", "小学", "中学", "大学", "学院", "党校"),
    "博物馆": ("博物馆", "纪念馆"),
    "银行": ("银行", "分行"),
    "实验室": ("实验室",),
    "镇": ("镇",),
    "村": ("村",),
    "街道": ("街道",),
    "区": ("区",),
}
_HEAD_RE = re.compile(r"(?:哪家|哪个|哪所|哪座|哪一家|哪一个|哪一所|什么)(" + "|".join(sorted(HEADS, key=len, reverse=True))
                      + ")")
_QUOTED_Q_RE = re.compile(r"“([^”]{1,30})”|《([^》]{1,40})》")
_YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年?")
_PLACE_WORD_RE = re.compile(r"^[\u4e00-\u9fff]{1,5}(?:区|镇|村|县|街道|岛)$")
_NOT_PLACE = frozenset({"小区", "社区", "城区", "园区", "全区", "全市", "农村", "乡村", "山区", "景区", "片区", "辖区",
                        "商圈", "试验区", "示范区", "实验区", "该区", "本区", "各区", "新区", "乡镇", "村镇", "圩镇",
                        "主城区", "老城区", "市区", "郊区", "驻区", "行政村", "自然村", "城镇"})

# Places a question may name; one not found in the evidence means the question is about somewhere else.
GAZETTEER = (
    "广州", "深圳", "珠海", "汕头", "佛山", "韶关", "湛江", "肇庆", "江门", "茂名", "惠州", "梅州", "汕尾", "河源",
    "阳江", "清远", "东莞", "中山", "潮州", "揭阳", "云浮", "北京", "上海", "天津", "重庆", "杭州", "南京", "苏州",
    "武汉", "成都", "西安", "长沙", "厦门", "福州", "南宁", "海口", "香港", "澳门", "台湾", "蓬江", "江海", "新会",
    "台山", "开平", "鹤山", "恩平", "江城", "阳春", "阳东", "阳西", "高新区", "海南", "湖南", "广西", "福建", "浙江",
)
CITIES = frozenset(GAZETTEER[:29])  # city names (not districts): mentioned in passing far more often
# Other names of the place or thing a question may use (侨都 is what Jiangmen calls itself).
ALIASES: dict[str, tuple[str, ...]] = {"侨都": ("江门",), "侨乡": ("江门",), "五邑": ("江门",), "共产党员": ("党员",)}
PLACE_ALIASES = ("侨都", "侨乡", "五邑")


def expand_aliases(question: str) -> str:
    """'侨都农民收入…' → '侨都农民收入…（江门）': the embedding model does not know 侨都 is 江门, and BM25 cannot
    match a name the articles do not use. Appended, so names like 侨都质量贷 stay whole."""
    if "江门" in question or not any(a in question for a in PLACE_ALIASES):
        return question
    return f"{question}（江门）"


# Words that only shape the question; they are not evidence to look for.
QUESTION_WORDS = frozenset({
    "多少", "几", "什么", "哪些", "哪个", "哪里", "哪儿", "谁", "如何", "怎样", "怎么", "为什么", "为何", "是否", "吗",
    "请问", "一下", "呢", "哪", "哪位", "何时", "什么时候", "多大", "多长", "有没有", "是不是", "分别", "主要", "具体",
    "名", "个", "人", "年", "目前", "现在", "当时", "共有", "一共", "总共", "共", "了", "有", "是", "在", "的", "哪家",
    "叫", "叫做", "称为", "哪一年", "哪年", "哪天", "几月", "包括", "哪几", "情况", "介绍", "说说", "告诉", "我",
    "多长时间", "多久", "大约", "大概", "左右", "如今", "至今", "哪方面", "哪种",
})
_FUTURE_RE = re.compile(r"明天|明日|后天|下周|下星期|下礼拜|下个月|今晚|明晚|未来几天|接下来几天")
_COUNTED_RE = re.compile(r"(?:多少|几)(?:名|个|位|家|所|支)?")


@dataclass(frozen=True)
class QuestionInfo:
    text: str
    answer_type: str
    factoid: bool
    unit: str | None
    years: tuple[str, ...]
    places: tuple[str, ...]
    keywords: tuple[str, ...]
    measure: str | None = None  # rank | percent | money | duration | area | person_times
    periods: tuple[str, ...] = ()  # 十四五 ...
    ordinals: tuple[str, ...] = ()  # 第二批 ...
    role: str | None = None  # the role a 谁 question asks for (区长, 纪委书记)
    head: str | None = None  # what an organisation/place question asks for (企业, 学校)
    quoted: tuple[str, ...] = ()  # names the question puts in quotes (“质量月”, 《行动方案》)
    any_place: bool = False  # places joined by 和/与 (compare 江海区 and 江城区): one per sentence suffices
    counted: str | None = None  # what a number question counts (多少党员 → 党员): the word after the number


def answer_type(question: str) -> str:
    for name, pat in _TYPE_PATTERNS:
        m = pat.search(question)
        if m and name == "person" and m.group(0) == "叫什么名字" and not _names_person(question[:m.start()]):
            continue  # "服务台叫什么名字" asks for the name of a thing
        if m:
            return name
    return "other"


def _names_person(text: str) -> bool:
    return any(r in text for r in ROLES) or bool(re.search(r"[他她]|这位|那位|同志|女士|先生|阿姨|大叔", text))


def asks_future(question: str) -> bool:
    """'明天江门会下雨吗': the library holds published articles, which cannot know what comes next."""
    return bool(_FUTURE_RE.search(question))


def question_role(q: str) -> str | None:
    """The role a person question names: right after 哪位, else right before 是谁/叫什么, else any."""
    found = [(m.start(), r) for r in ROLES for m in re.finditer(re.escape(r), q)]
    if not found:
        return None
    slot = _ROLE_SLOT_RE.search(q)
    if slot:
        after = [(i, r) for i, r in found if i == slot.end()]
        before = [(i, r) for i, r in found if i + len(r) == slot.start() or i + len(r) + 1 == slot.start()]
        for group in (after, before):
            if group:
                return max(group, key=lambda x: len(x[1]))[1]
    return max(found, key=lambda x: (len(x[1]), -x[0]))[1]


def analyse(question: str, segmenter: Segmenter) -> QuestionInfo:
    q = question.strip()
    kind = answer_type(q)
    unit = None
    measure = None
    counted = None
    if kind == "number":
        m = _UNIT_RE.search(q)
        if m:
            unit = "".join(g for g in m.groups() if g) or None
        measure = next((name for name, pat in _MEASURES if pat.search(q)), None)
        if measure is None:
            counted = _counted_noun(q, segmenter)
    role = question_role(q) if kind == "person" else None
    hm = _HEAD_RE.search(q) if kind in ("organization", "place", "name", "other") else None
    years = tuple(dict.fromkeys(_YEAR_RE.findall(q)))
    places = [p for p in GAZETTEER if p in q]
    for w in segmenter.words(q):
        # a named district/town/village (jieba word such as 新会区, 杜阮镇), not a generic one (小区, 全区)
        if _PLACE_WORD_RE.match(w) and w not in _NOT_PLACE and not w.endswith(("小区", "地区")) \
                and not any(w in p or p in w for p in places):
            places.append(w)
    keywords: list[str] = []
    for w in segmenter.content_words(q):
        if w in QUESTION_WORDS or (len(w) < 2 and not w.isdigit()):
            continue
        if re.fullmatch(r"(?:19|20)\d{2}", w):
            continue  # years are checked separately
        keywords.append(w)
    return QuestionInfo(q, kind, kind in FACTOID_TYPES, unit, years, tuple(dict.fromkeys(places)),
                        tuple(dict.fromkeys(keywords)), measure=measure,
                        periods=tuple(dict.fromkeys(_PERIOD_RE.findall(q))),
                        ordinals=tuple(dict.fromkeys(_ORDINAL_RE.findall(q))), role=role,
                        head=hm.group(1) if hm else None,
                        quoted=tuple(dict.fromkeys(a or b for a, b in _QUOTED_Q_RE.findall(q))),
                        any_place=len(places) > 1 and bool(re.search(r"[和与及、]|都|分别|两|又|[？?；;].", q)),
                        counted=counted)


def _counted_noun(q: str, segmenter: Segmenter) -> str | None:
    """'有多少党员报名' → 党员: a number answering it is written right before that word ('1383名党员')."""
    m = _COUNTED_RE.search(q)
    if not m:
        return None
    words = segmenter.words(q[m.end():])
    w = words[0] if words else ""
    return w if len(w) >= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", w) and w not in QUESTION_WORDS else None
