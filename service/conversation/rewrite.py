"""Follow-up questions made standalone by rule: the place, document, year and topic of the turn before are
carried over when the follow-up lacks them, pronouns (它, 这个条例, 当地) are replaced, and a 呢-question
(那东莞呢？) swaps its new place, year or topic into the question before it.

    江门市文明行为促进条例什么时候施行？  +  那东莞呢？     →  东莞市文明行为促进条例什么时候施行？
    江门遛狗不牵绳怎么处罚？            +  罚多少钱？     →  江门遛狗不牵绳罚多少钱？
    江门市文明行为促进条例由哪个部门负责？ + 它什么时候施行？ → 江门市文明行为促进条例什么时候施行？

A follow-up that names a new place or topic replaces the old one; one that names its own place and subject
is left as it is. The words the rules look for are data (words.tsv, topics.txt); places are China's
divisions (index/lexicon/divisions.tsv) and the seed places (index/lexicon/places.tsv).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from index.gazetteer import load_divisions, load_gazetteer

HERE = Path(__file__).resolve().parent
WORDS = HERE / "words.tsv"
TOPICS = HERE / "topics.txt"
_END = re.compile(r"[\s？?。.!！,，;；]+$")
_YEAR = re.compile(r"(?:19|20)\d{2}\s*年")
_OWN_TIME = re.compile(r"目前|现在|当前|如今|今年|去年|前年|近年|最新|现行")
_QUOTED_DOC = re.compile(r"《[^》]{2,60}》")
# a regulation or document named without 《》: a run of Chinese ending like one (…条例, …办法, …规定)
_DOC = re.compile(r"[\u4e00-\u9fff]{2,30}?(?:条例|办法|规定|细则|决定|方案|意见|通知)")
_NOT_DOC = re.compile(r"[哪什这那该本此其它么谁]")
_NE = re.compile(r"(?:的)?(?:呢|怎么样呢|怎么样|又如何|如何呢|又怎样)$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Words:
    lead: tuple[str, ...]
    doc: tuple[str, ...]
    place: tuple[str, ...]
    it: tuple[str, ...]
    ask: tuple[str, ...]
    tail: tuple[str, ...]
    filler: tuple[str, ...]
    topics: tuple[str, ...]


@lru_cache(maxsize=2)
def load_words(words: Path = WORDS, topics: Path = TOPICS) -> Words:
    kinds: dict[str, list[str]] = {}
    for line in words.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            kind, phrase = line.split("\t", 1)
            kinds.setdefault(kind.strip(), []).append(phrase.strip())

    def longest_first(items: list[str]) -> tuple[str, ...]:
        return tuple(sorted(dict.fromkeys(items), key=len, reverse=True))

    topic_list = [t.strip() for t in topics.read_text(encoding="utf-8").splitlines()
                  if t.strip() and not t.startswith("#")]
    lists = {k: longest_first(kinds.get(k, [])) for k in ("lead", "doc", "place", "it", "ask", "tail", "filler")}
    return Words(**lists, topics=longest_first(topic_list))


@dataclass(frozen=True)
class Span:
    text: str  # as written in the question
    start: int
    end: int
    canonical: str = ""  # a place's full name (东莞 → 东莞市)


@dataclass(frozen=True)
class Slots:
    """What a question names: its places, years, the document or regulation, the topics."""

    places: tuple[Span, ...] = ()
    years: tuple[Span, ...] = ()
    document: Span | None = None
    topics: tuple[Span, ...] = ()


@dataclass(frozen=True)
class Turn:
    """A previous turn as the client received it."""

    question: str
    answer: str = ""
    resolved_question: str | None = None


@dataclass(frozen=True)
class Resolution:
    question: str  # as asked
    resolved: str  # the standalone question answered
    method: str  # first (no history) | standalone (left as it is) | rules | llm
    carried: tuple[str, ...] = ()  # what the rules did: place, year, document, topic, subject, pronoun, swap
    fallback_reason: str | None = None  # the LLM could not condense it (its FALLBACK reason); the rules did
    context: str | None = None  # the standalone question of the turn before

    @property
    def changed(self) -> bool:
        return self.resolved != self.question

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "carried": list(self.carried), "fallback_reason": self.fallback_reason,
                "context": self.context}


# --- reading a question ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _place_names() -> dict[str, str]:
    """Every place name a question may use → its full name (counties only by full name, as the gazetteer)."""
    divisions = load_divisions()
    names: dict[str, str] = {}
    for name, d in divisions.by_name.items():
        if d.level in ("province", "city", "county"):
            names[name] = name
    for short, d in divisions.by_short.items():
        names.setdefault(short, d.name)
    gazetteer = load_gazetteer()
    for place in gazetteer.places:  # the seed articles' districts and towns
        full = divisions.lookup(place)
        names.setdefault(place, full.name if full is not None else place)
    for alias in gazetteer.place_aliases:  # 侨都 → 江门市
        target = gazetteer.aliases[alias][0]
        full = divisions.lookup(target)
        names.setdefault(alias, full.name if full is not None else target)
    return names


def place_spans(text: str) -> list[Span]:
    names = _place_names()
    out: list[Span] = []
    i = 0
    while i < len(text):
        for n in range(min(12, len(text) - i), 1, -1):
            word = text[i:i + n]
            if word in names:
                out.append(Span(word, i, i + n, names[word]))
                i += n
                break
        else:
            i += 1
    return out


def _find_all(text: str, phrases: Sequence[str]) -> list[Span]:
    """Non-overlapping occurrences, longest phrase first at each position."""
    out: list[Span] = []
    i = 0
    while i < len(text):
        for p in phrases:
            if text.startswith(p, i):
                out.append(Span(p, i, i + len(p)))
                i += len(p)
                break
        else:
            i += 1
    return out


def document_span(text: str) -> Span | None:
    m = _QUOTED_DOC.search(text)
    if m:
        return Span(m.group(0), m.start(), m.end())
    for m in _DOC.finditer(text):
        word = m.group(0)
        # drop what comes before the name (江门遛狗违反了…条例 is no title): start at a place if one is inside
        places = place_spans(word)
        if places:
            start = m.start() + places[0].start
            word = text[start:m.end()]
        else:
            start = m.start()
        if _NOT_DOC.search(word) or len(word) < 4:
            continue
        return Span(word, start, m.end())
    return None


def slots(text: str) -> Slots:
    w = load_words()
    return Slots(places=tuple(place_spans(text)),
                 years=tuple(Span(m.group(0), m.start(), m.end()) for m in _YEAR.finditer(text)),
                 document=document_span(text), topics=tuple(_find_all(text, w.topics)))


def has_subject(text: str) -> bool:
    """Whether a question names what it is about, beyond places, years and asking words (罚多少钱: no;
    有多少名专职网格员: yes)."""
    w = load_words()
    s = slots(text)
    if s.document is not None or s.topics:
        return True
    rest = text
    for span in sorted([*s.places, *s.years], key=lambda x: -x.start):
        rest = rest[:span.start] + " " + rest[span.end:]
    for phrases in (w.doc, w.place, w.it, w.filler):
        for p in phrases:
            rest = rest.replace(p, " ")
    return len(_CJK.findall(rest)) >= 2


def subject(question: str) -> str:
    """What a standalone question is about: the part before its asking words, without the verbs and particles
    that lead into them (江门市文明行为促进条例由哪个部门负责 → 江门市文明行为促进条例)."""
    w = load_words()
    body = _END.sub("", question)
    cut = len(body)
    for a in w.ask:
        i = body.find(a)
        if 0 <= i < cut:
            cut = i
    out = body[:cut]
    changed = True
    while changed and out:
        changed = False
        for t in w.tail:
            if out.endswith(t) and len(out) > len(t):
                out = out[: -len(t)]
                changed = True
                break
    return out


# --- rewriting a follow-up -------------------------------------------------------------------------------


def _strip_lead(text: str) -> str:
    w = load_words()
    changed = True
    while changed:
        changed = False
        for lead in w.lead:
            if text.startswith(lead) and len(text) > len(lead):
                text = text[len(lead):].lstrip("，, ")
                changed = True
                break
    return text


def _place_as(new: Span, old: Span) -> str:
    """The new place written like the old one was: full name for a full name (江门市 → 东莞市), as said
    otherwise."""
    if old.text == old.canonical and new.canonical:
        return new.canonical
    return new.text


def _replace(text: str, span: Span, new: str) -> str:
    return text[:span.start] + new + text[span.end:]


def _swap_places(text: str, new: Span) -> str:
    old = place_spans(text)
    if not old:
        return new.text + text
    first = old[0]
    # a county's question moved to another place: the county and its city both go (台山市 under 江门市)
    return _replace(text, first, _place_as(new, first))


def _swap_year(text: str, new: Span) -> str:
    m = _YEAR.search(text)
    if m:
        return text[:m.start()] + new.text + text[m.end():]
    places = place_spans(text)
    if places:  # after the place: 江门市2023年…
        at = places[0].end
        return text[:at] + new.text + text[at:]
    return new.text + text


def _head_swap(subj: str, content: str) -> str | None:
    """副组长 after …领导小组的组长: the subject's last word becomes the follow-up's (…领导小组的副组长)."""
    for n in range(min(len(content), len(subj)), 1, -1):
        if subj.endswith(content[-n:]):
            return subj[: len(subj) - n] + content if not subj.endswith(content) else subj
    return None


def _replace_pronouns(text: str, context: str, ctx: Slots, carried: list[str]) -> str:
    w = load_words()
    doc = ctx.document.text if ctx.document is not None else None
    for p in w.doc:
        if p in text and doc is not None:
            text = text.replace(p, doc)
            carried.append("pronoun")
    for p in w.place:
        if p in text and ctx.places:
            text = text.replace(p, ctx.places[0].text)
            carried.append("pronoun")
    for p in w.it:
        if text.startswith(p) or (p in text and p not in ("其",)):
            # the document in focus; else the place the question before was about; else its subject
            focus = doc or (ctx.places[0].text if ctx.places else "") or subject(context)
            if focus:
                owner = p.endswith("的")
                text = text.replace(p, focus + ("的" if owner else ""), 1)
                carried.append("pronoun")
            break
    return text


def rewrite(question: str, context: str) -> Resolution:
    """`question` made standalone given `context`, the standalone question of the turn before."""
    asked = question.strip()
    ending = (_END.search(asked).group(0).strip() if _END.search(asked) else "") or "？"  # type: ignore[union-attr]
    body = _END.sub("", asked)
    ctx_body = _END.sub("", context.strip())
    if not body or not ctx_body:
        return Resolution(asked, asked, "standalone", context=context)
    ctx = slots(ctx_body)
    core = _strip_lead(body)
    carried: list[str] = []
    ne = _NE.search(core)
    if ne and len(core) > len(ne.group(0)):
        stem = core[: ne.start()]
        if not any(a in stem for a in load_words().ask):  # a bare 呢-question: swap into the question before
            out = _swap_into(ctx_body, ctx, stem, carried)
            if out is not None:
                return Resolution(asked, out + ending, "rules", tuple(dict.fromkeys(carried)), context=context)
        core = stem
    core = _replace_pronouns(core, ctx_body, ctx, carried)
    own = slots(core)
    if not has_subject(core):  # 罚多少钱, 什么时候施行: about what the turn before was about
        subj = subject(ctx_body) or ctx_body
        for p in own.places:
            subj = _swap_places(subj, p)
            core = core.replace(p.text, "", 1)
        for y in own.years:
            subj = _swap_year(subj, y)
            core = core.replace(y.text, "", 1)
        carried.append("subject")
        return Resolution(asked, subj + core + ending, "rules", tuple(dict.fromkeys(carried)), context=context)
    swapped = _head_swap(subject(ctx_body), _content_head(core)) if not own.places and not own.document else None
    if swapped is not None and not own.topics:
        rest = core[len(_content_head(core)):]
        carried.append("swap")
        return Resolution(asked, swapped + rest + ending, "rules", tuple(dict.fromkeys(carried)), context=context)
    ctx_subj = subject(ctx_body)
    doc = ctx.document
    # the topic nearest the asking words, not a word inside a regulation's name (文明行为 of 文明行为促进条例)
    old_topic = next((t for t in reversed(ctx.topics) if t.end <= len(ctx_subj)
                      and not (doc is not None and doc.start <= t.start < doc.end)), None)
    if own.topics and not own.places and old_topic is not None and core.startswith(own.topics[0].text):
        # 发送旅客多少人次？ after 2024年暑运期间江门站到发旅客多少人次？: the same question about the new topic
        carried.append("topic")
        resolved = _replace(ctx_subj, old_topic, own.topics[0].text) + core[own.topics[0].end:] + ending
        return Resolution(asked, resolved, "rules", tuple(dict.fromkeys(carried)), context=context)
    prefix = ""
    if ctx.places and not own.places:
        prefix += _place_run(ctx_body, ctx.places)
        carried.append("place")
    if ctx.years and not own.years and not _OWN_TIME.search(core):  # 目前 / 今年 is a time of its own
        if own.places and not prefix:
            at = own.places[0].end
            core = core[:at] + ctx.years[0].text + core[at:]
        else:
            prefix += ctx.years[0].text
        carried.append("year")
    resolved = prefix + core + ending
    if not carried:
        return Resolution(asked, asked, "standalone", context=context)
    return Resolution(asked, resolved, "rules", tuple(dict.fromkeys(carried)), context=context)


def _place_run(text: str, places: Sequence[Span]) -> str:
    """The first place with the places right after it (阳江市江城区: the district and its city); a division
    before a name many cities use (高新区（江海区） → 江海区)."""
    divisions = load_divisions().by_name
    named = [i for i, p in enumerate(places) if p.canonical in divisions]
    if named and named[0] > 0:
        places = places[named[0]:]
    end = places[0].end
    for p in places[1:]:
        if p.start != end:
            break
        end = p.end
    return text[places[0].start:end]


def _content_head(core: str) -> str:
    """The words a follow-up opens with before its asking words (副组长 in 副组长是谁)."""
    return subject(core)


def _swap_into(ctx_body: str, ctx: Slots, stem: str, carried: list[str]) -> str | None:
    """那东莞呢 / 2023年呢 / 乱扔垃圾呢: the turn before, with the stem's place, year or topic in place of its
    own. None when the stem holds nothing the rules can place."""
    stem = stem.removesuffix("的").strip("，, ")
    own = slots(stem)
    out = ctx_body
    rest = stem
    for p in own.places[:1]:
        out = _swap_places(out, p)
        rest = rest.replace(p.text, "", 1)
        carried.append("place")
    for y in own.years[:1]:
        out = _swap_year(out, y)
        rest = rest.replace(y.text, "", 1)
        carried.append("year")
    rest = rest.strip("的，, ")
    if not rest:
        return out if carried else None
    now = slots(out)
    topics = slots(rest).topics
    if topics and now.topics:
        carried.append("topic")
        return _replace(out, now.topics[0], topics[0].text)
    if own.document is not None and now.document is not None:
        carried.append("document")
        return _replace(out, now.document, own.document.text)
    swapped = _head_swap(subject(out), rest)
    if swapped is not None:
        carried.append("swap")
        return swapped + out[len(subject(out)):]
    # the new subject in place of the old one, the asking part kept (…的组长是谁 → 党委书记是谁)
    subj = subject(out)
    keep = ""
    if now.places and not own.places and not rest.startswith(now.places[0].text):
        keep = now.places[0].text
    carried.append("topic")
    return keep + rest + out[len(subj):]


def standalone_history(history: Sequence[Turn]) -> str | None:
    """The standalone question of the last turn: the one the client was told it answered, else resolved
    here turn by turn."""
    context: str | None = None
    for turn in history:
        if turn.resolved_question:
            context = turn.resolved_question
        elif context is None:
            context = turn.question
        else:
            context = rewrite(turn.question, context).resolved
    return context


def resolve(question: str, history: Sequence[Turn] = ()) -> Resolution:
    """The standalone question to answer for `question` after `history` (oldest turn first), by rule."""
    context = standalone_history(history)
    if context is None:
        q = question.strip()
        return Resolution(q, q, "first")
    return rewrite(question, context)

