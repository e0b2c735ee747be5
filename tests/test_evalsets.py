"""Checks on the labelled question sets in eval/sets/ (schema, verbatim answers/evidence, composition)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from corpus.pipeline import load_chunked_corpus

SETS_DIR = Path(__file__).resolve().parents[1] / "eval" / "sets"
SET_FILES = {
    "dev": ("seeds-dev.jsonl", "dev"),
    "calib": ("seeds-calib.jsonl", "cal"),
    "smoke": ("seeds-smoke.jsonl", "dev"),
}

ANSWER_TYPES = {"number", "person", "place", "organization", "name", "date", "list", "why", "how", "yesno"}
KINDS = {"factoid", "paraphrase", "multi_doc", "conflict", "temporal", "unanswerable"}
UNANSWERABLE_REASONS = {"other_city", "other_year", "not_stated", "out_of_scope"}
VOCABULARY = ANSWER_TYPES | KINDS | UNANSWERABLE_REASONS

REQUIRED_FIELDS = {
    "id": str,
    "question": str,
    "answers": list,
    "gold_docs": list,
    "evidence": list,
    "answerable": bool,
    "tags": list,
}


def _load(name: str) -> list[dict]:
    path = SETS_DIR / SET_FILES[name][0]
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - reported as a failure
            pytest.fail(f"{path.name}:{lineno}: invalid JSON: {exc}")
    return rows


def _norm_question(q: str) -> str:
    q = unicodedata.normalize("NFKC", q)
    return re.sub(r"[\s\W_]+", "", q)


@pytest.fixture(scope="module")
def cleaned_texts() -> dict[str, str]:
    corpus = load_chunked_corpus()
    return {doc_id: clean.text for doc_id, clean in corpus.cleaned.items()}


@pytest.fixture(scope="module")
def sets() -> dict[str, list[dict]]:
    return {name: _load(name) for name in SET_FILES}


def _rows(sets: dict[str, list[dict]]):
    for name, rows in sets.items():
        for row in rows:
            yield name, row


@pytest.mark.parametrize("name", sorted(SET_FILES))
def test_set_parses_and_ids_unique(sets, name):
    rows = sets[name]
    assert rows, f"{name} is empty"
    ids = [r.get("id") for r in rows]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"{name}: duplicate ids {dupes}"
    prefix = SET_FILES[name][1]
    bad = [i for i in ids if not re.fullmatch(rf"{prefix}-\d{{3}}", str(i))]
    assert not bad, f"{name}: ids not of the form {prefix}-NNN: {bad}"


def test_required_fields_and_types(sets):
    problems = []
    for name, row in _rows(sets):
        for field, typ in REQUIRED_FIELDS.items():
            if field not in row:
                problems.append(f"{name}/{row.get('id')}: missing {field}")
            elif not isinstance(row[field], typ):
                problems.append(f"{name}/{row.get('id')}: {field} is {type(row[field]).__name__}")
        for field in ("answers", "gold_docs", "evidence", "tags"):
            if any(not isinstance(x, str) or not x.strip() for x in row.get(field, [])):
                problems.append(f"{name}/{row.get('id')}: {field} holds a non-string or empty item")
        if not str(row.get("question", "")).strip():
            problems.append(f"{name}/{row.get('id')}: empty question")
    assert not problems, "\n".join(problems)


def test_tags_from_vocabulary(sets):
    problems = []
    for name, row in _rows(sets):
        tags = row["tags"]
        unknown = set(tags) - VOCABULARY
        if unknown:
            problems.append(f"{name}/{row['id']}: unknown tags {sorted(unknown)}")
        if len(set(tags)) != len(tags):
            problems.append(f"{name}/{row['id']}: repeated tags")
        if row["answerable"]:
            if "unanswerable" in tags or set(tags) & UNANSWERABLE_REASONS:
                problems.append(f"{name}/{row['id']}: answerable but tagged unanswerable/reason")
            if not set(tags) & ANSWER_TYPES:
                problems.append(f"{name}/{row['id']}: no answer-type tag")
        else:
            if "unanswerable" not in tags:
                problems.append(f"{name}/{row['id']}: unanswerable without the unanswerable tag")
            if len(set(tags) & UNANSWERABLE_REASONS) != 1:
                problems.append(f"{name}/{row['id']}: needs exactly one unanswerable reason tag")
            if set(tags) & {"factoid", "paraphrase", "multi_doc", "conflict"}:
                problems.append(f"{name}/{row['id']}: unanswerable with an answerable-only kind tag")
        if "multi_doc" in tags and len(set(row["gold_docs"])) < 2:
            problems.append(f"{name}/{row['id']}: multi_doc needs two gold docs")
    assert not problems, "\n".join(problems)


def test_answerable_iff_answers_and_gold_docs(sets):
    problems = []
    for name, row in _rows(sets):
        has = bool(row["answers"]) and bool(row["gold_docs"]) and bool(row["evidence"])
        none = not row["answers"] and not row["gold_docs"] and not row["evidence"]
        if row["answerable"] and not has:
            problems.append(f"{name}/{row['id']}: answerable but answers/gold_docs/evidence empty")
        if not row["answerable"] and not none:
            problems.append(f"{name}/{row['id']}: unanswerable but answers/gold_docs/evidence given")
    assert not problems, "\n".join(problems)


def test_gold_docs_exist(sets, cleaned_texts):
    problems = [
        f"{name}/{row['id']}: unknown doc {d}"
        for name, row in _rows(sets)
        for d in row["gold_docs"]
        if d not in cleaned_texts
    ]
    assert not problems, "\n".join(problems)


def test_answers_verbatim_in_gold_docs(sets, cleaned_texts):
    problems = []
    for name, row in _rows(sets):
        texts = [cleaned_texts[d] for d in row["gold_docs"] if d in cleaned_texts]
        for ans in row["answers"]:
            if not any(ans in t for t in texts):
                problems.append(f"{name}/{row['id']}: answer not in gold docs: {ans!r}")
    assert not problems, "\n".join(problems)


def test_evidence_verbatim_and_covers_each_gold_doc(sets, cleaned_texts):
    problems = []
    for name, row in _rows(sets):
        texts = {d: cleaned_texts[d] for d in row["gold_docs"] if d in cleaned_texts}
        for quote in row["evidence"]:
            if not any(quote in t for t in texts.values()):
                problems.append(f"{name}/{row['id']}: evidence not in gold docs: {quote!r}")
        for d, t in texts.items():
            if not any(quote in t for quote in row["evidence"]):
                problems.append(f"{name}/{row['id']}: no evidence quote from gold doc {d}")
    assert not problems, "\n".join(problems)


def test_each_answer_in_some_evidence(sets):
    problems = [
        f"{name}/{row['id']}: answer {ans!r} in no evidence quote"
        for name, row in _rows(sets)
        for ans in row["answers"]
        if not any(ans in quote for quote in row["evidence"])
    ]
    assert not problems, "\n".join(problems)


def test_smoke_is_subset_of_dev(sets):
    dev = {r["id"]: r for r in sets["dev"]}
    smoke = sets["smoke"]
    assert len(smoke) == 12
    for row in smoke:
        assert row["id"] in dev, f"smoke {row['id']} not in dev"
        assert row == dev[row["id"]], f"smoke {row['id']} differs from dev"
    answerable = [r for r in smoke if r["answerable"] and "factoid" in r["tags"]]
    assert len(answerable) >= 8
    assert sum("conflict" in r["tags"] for r in smoke) >= 1
    assert sum(not r["answerable"] for r in smoke) >= 3


def test_calib_disjoint_from_dev(sets):
    dev_q = {_norm_question(r["question"]) for r in sets["dev"]}
    overlap = [r["id"] for r in sets["calib"] if _norm_question(r["question"]) in dev_q]
    assert not overlap, f"calib questions also in dev: {overlap}"


def test_dev_composition(sets, cleaned_texts):
    dev = sets["dev"]
    tags = Counter(t for r in dev for t in r["tags"])
    assert len(dev) >= 150
    assert sum(not r["answerable"] for r in dev) >= 25
    assert tags["multi_doc"] >= 5
    assert tags["conflict"] >= 2
    assert tags["factoid"] >= 90
    assert tags["list"] >= 10
    assert tags["why"] + tags["how"] >= 10
    assert tags["paraphrase"] >= 15
    assert tags["temporal"] >= 10
    covered = {d for r in dev if "factoid" in r["tags"] for d in r["gold_docs"]}
    assert covered == set(cleaned_texts), f"factoids miss documents: {set(cleaned_texts) - covered}"


def test_calib_composition(sets):
    calib = sets["calib"]
    assert sum(not r["answerable"] for r in calib) >= 20
    assert sum(r["answerable"] and "factoid" in r["tags"] for r in calib) >= 20


# --- the regulations set (eval/external/regulations/): written over the 249 regulation files --------------------

REG_SET = Path(__file__).resolve().parents[1] / "eval" / "external" / "regulations" / "questions.jsonl"
REG_TAGS = {"regulation", "effective_date", "fine", "department", "scope", "article", "meeting", "version",
            "default_place", "trap_city", "trap_missing_fact", "trap_version"}
REG_TRAPS = {"trap_city": "other_city", "trap_missing_fact": "not_stated", "trap_version": "other_year"}
# the cities the trap_city questions ask about: none has a regulation in the corpus (checked against the file names)
TRAP_CITIES = ("合肥", "芜湖", "蚌埠", "嘉兴", "阳江", "汕头", "常德", "株洲", "孝感", "南充", "上饶", "宝鸡", "咸阳",
               "乌鲁木齐", "泉州", "漳州", "四平", "抚顺", "上海")
DEFAULT_PLACE_FILE = "广东省__2021_江门市文明行为促进条例.doc"


def _reg_raw_dir() -> Path:
    from eval.rawfiles import shared_dir

    raw = shared_dir() / "corpora" / "regulations" / "raw"
    if not raw.is_dir():
        pytest.skip(f"the regulations corpus is not here ({raw}): it lives in ../shared beside the clone")
    return raw


@pytest.fixture(scope="module")
def reg_rows() -> list[dict]:
    return [json.loads(line) for line in REG_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_regulations_schema_ids_and_counts(reg_rows):
    ids = [r["id"] for r in reg_rows]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"reg-\d{3}", i) for i in ids)
    assert len({_norm_question(r["question"]) for r in reg_rows}) == len(reg_rows), "repeated question"
    problems = []
    for r in reg_rows:
        for field, typ in REQUIRED_FIELDS.items():
            if not isinstance(r.get(field), typ):
                problems.append(f"{r['id']}: {field} is not {typ.__name__}")
        has = bool(r["answers"]) and bool(r["gold_docs"]) and bool(r["evidence"])
        if r["answerable"] != has or (not r["answerable"] and (r["answers"] or r["gold_docs"] or r["evidence"])):
            problems.append(f"{r['id']}: answerable must hold exactly when answers, gold_docs and evidence are given")
        tags = set(r["tags"])
        if unknown := tags - VOCABULARY - REG_TAGS:
            problems.append(f"{r['id']}: unknown tags {sorted(unknown)}")
        if "regulation" not in tags:
            problems.append(f"{r['id']}: every question of the set is tagged regulation")
        if r["answerable"]:
            if tags & ({"unanswerable"} | UNANSWERABLE_REASONS | set(REG_TRAPS)):
                problems.append(f"{r['id']}: answerable with an unanswerable tag")
            if not tags & (ANSWER_TYPES | {"scope"}) or not tags & {"factoid", "paraphrase"}:  # scope: an answer type
                problems.append(f"{r['id']}: needs an answer type and factoid or paraphrase")
            if not all(any(a in e for e in r["evidence"]) for a in r["answers"]):
                problems.append(f"{r['id']}: an answer is in no evidence quote")
            if len(r["evidence"]) != len(r["gold_docs"]):
                problems.append(f"{r['id']}: one evidence quote per gold document")
        else:
            traps = tags & set(REG_TRAPS)
            if "unanswerable" not in tags or len(traps) != 1:
                problems.append(f"{r['id']}: a trap has the unanswerable tag and exactly one trap kind")
            elif tags & UNANSWERABLE_REASONS != {REG_TRAPS[next(iter(traps))]}:
                problems.append(f"{r['id']}: {sorted(traps)} goes with reason {REG_TRAPS[next(iter(traps))]}")
    assert not problems, "\n".join(problems)
    answerable = [r for r in reg_rows if r["answerable"]]
    assert len(reg_rows) >= 150 and len(reg_rows) - len(answerable) >= 40
    regs = {g for r in answerable for g in r["gold_docs"]}
    assert len(regs) >= 40 and len({g.split("__")[0] for g in regs}) >= 15  # many regulations, many provinces
    assert sum(DEFAULT_PLACE_FILE in r["gold_docs"] for r in answerable) >= 5
    for tag in REG_TRAPS:
        assert any(tag in r["tags"] for r in reg_rows), f"no {tag} question"
    default = [r for r in reg_rows if "default_place" in r["tags"]]
    assert 1 <= len(default) <= 10 and all(r["gold_docs"] == [DEFAULT_PLACE_FILE] for r in default)
    assert all("江门" not in r["question"] for r in default)  # no place named: POLICYQA_DEFAULT_PLACE=江门 answers


def test_regulations_trap_cities_are_absent(reg_rows):
    names = [p.name for p in _reg_raw_dir().iterdir()]
    assert not [c for c in TRAP_CITIES if any(c in n for n in names)]
    for r in reg_rows:
        if "trap_city" in r["tags"]:
            assert any(c in r["question"] for c in TRAP_CITIES), f"{r['id']}: names none of TRAP_CITIES"


def test_regulations_gold_files_exist(reg_rows):
    names = {p.name for p in _reg_raw_dir().iterdir()}
    missing = sorted({g for r in reg_rows for g in r["gold_docs"]} - names)
    assert not missing, f"gold files not in the corpus folder: {missing}"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_regulations_evidence_in_extracted_text(reg_rows):
    """Every quote occurs in the extracted text of its gold file, compared without whitespace (line breaks and
    indents may still move as the readers change). Every gold file must be readable."""
    from corpus.formats import extract
    from corpus.formats.base import FormatError

    raw = _reg_raw_dir()
    texts: dict[str, str | None] = {}
    unreadable: dict[str, str] = {}
    problems = []
    checked = 0
    for r in reg_rows:
        for gold, quote in zip(r["gold_docs"], r["evidence"], strict=True):
            if gold not in texts:
                try:
                    texts[gold] = _squash(extract((raw / gold).read_bytes(), gold).text)
                except FormatError as exc:
                    texts[gold] = None
                    unreadable[gold] = exc.code
            if texts[gold] is None:
                continue
            checked += 1
            if _squash(quote) not in texts[gold]:
                problems.append(f"{r['id']}: quote not in {gold}: {quote[:60]}")
    assert not unreadable, f"gold files that cannot be read: {unreadable}"
    assert not problems, "\n".join(problems)
    assert checked >= 190
