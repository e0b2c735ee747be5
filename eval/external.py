"""External evaluation sets (eval/external/<name>/): their corpus as a cached policyqa corpus + index.

A set of original files (source.json instead of corpus.jsonl: the regulations) is ingested through the upload
path instead, see eval/rawfiles.py; the rest of this module (ids.json, settings, index) serves both kinds.

An external set ships `corpus.jsonl` ({doc_id, title, text}) and `questions.jsonl`. To run it through the
same pipeline as the seed sets, each passage is written as a stored article
`eval/cache/<name>/corpus/<safe_id>.md` (YAML front matter + the passage text, verbatim) and the set gets
its own index folder `eval/cache/<name>/index/` (generations + its embedding cache, so a rebuild embeds only
passages whose text changed). `eval/cache/` is git-ignored.

* **Ids.** External ids ("cmrc2018-dev:DEV_0", "chronoqa:00000") are not valid policyqa ids. `safe_id`
  lower-cases them, turns ":" into "." and any other character outside [a-z0-9._-] into "-"; when two ids
  of a set would get the same slug, each of them gets "-<8 hex of sha256(id)>" appended, so the mapping is
  deterministic, independent of file order and one-to-one. The mapping is stored in
  `eval/cache/<name>/ids.json` (safe id → original id) and in each file's front matter (`external_id`).
  Eval runs report the ORIGINAL ids (ranked documents and citations), so gold ids compare directly.
* **Front matter.** `title`: the passage title, or the original id when it has none (ChronoQA passages
  are untitled; the id adds no words to the embedded/BM25 text, where a clipped lead would repeat them).
  `date`: a date the passage text opens with ("2019年7月23日，…" → 2019-07-23, also YYYY年M月 and YYYY年,
  optionally after "北京时间"), else the set's placeholder year (`PLACEHOLDER_DATES`); always
  `date_inferred: true` with `date_evidence` saying which. The placeholder stays although a user's document
  never gets a made-up date (service/docstore.py): these corpora are a measuring instrument, never served,
  the placeholder is marked as one, and the published baselines (eval/baselines) were measured with it — the
  year filter (service/answering/filters.py) reads it for undated facts. `source`: dataset, repository@commit, licence.
  `cleaning: verbatim` keeps the passage exactly as given (see corpus/cleaning.py): these are clean
  single-paragraph passages, not captured web pages. With the default cleaning, page-chrome, heading and
  repeated-sentence rules would drop 2 of the 7,199 passages whole ("版权所有" in a news text; a 9-character
  passage taken for a title) and 3 repeated sentences, and turn zero-width spaces into spaces.
* **Writes.** A file is rewritten only when its bytes change, and files of passages no longer in the set are
  removed, so an unchanged set keeps the same corpus fingerprint and the index is not rebuilt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from corpus.cleaning import VERBATIM
from corpus.documents import render_document, validate_doc_id
from eval import rawfiles
from eval import sets as evalsets
from service.settings import Settings

CACHE_DIR = Path(__file__).resolve().parent / "cache"
IDS_FILE = "ids.json"
# Year used when a passage does not open with a date. CMRC 2018 passages are Chinese Wikipedia text
# collected for the 2018 evaluation; ChronoQA's news runs 2019-2024, and 2019 is its first year.
PLACEHOLDER_DATES: Mapping[str, str] = {"cmrc2018_dev": "2018", "chronoqa": "2019"}
DEFAULT_PLACEHOLDER_DATE = "1970"  # a set not listed above: obviously not a real date
MAX_SLUG = 110  # leaves room for the hash suffix within the 128-character id limit

_LEAD_DATE = re.compile(r"^(?:北京时间)?\s*(\d{4})年(?:(\d{1,2})月(?:(\d{1,2})日)?)?")


@dataclass(frozen=True)
class ExternalDoc:
    external_id: str
    title: str
    text: str


@dataclass(frozen=True)
class IdMap:
    """One-to-one mapping between a set's external doc ids and policyqa doc ids."""

    to_safe: Mapping[str, str]

    @cached_property
    def to_external(self) -> dict[str, str]:
        return {s: e for e, s in self.to_safe.items()}

    def safe(self, external_id: str) -> str:
        return self.to_safe[external_id]

    def external(self, safe_id: str) -> str:
        return self.to_external[safe_id]


@dataclass(frozen=True)
class Materialised:
    name: str
    root: Path  # eval/cache/<name>
    corpus_dir: Path
    index_dir: Path
    ids: IdMap
    written: int  # files created or changed
    unchanged: int
    removed: int
    failed: tuple[tuple[str, str], ...] = ()  # files of a raw-file set that could not be ingested, with why


def slug(external_id: str) -> str:
    """Lower-case, ":" → ".", anything outside [a-z0-9._-] → "-", no "..", starts with [a-z0-9]."""
    s = external_id.strip().lower().replace(":", ".")
    s = re.sub(r"[^a-z0-9._-]", "-", s)
    s = re.sub(r"\.{2,}", ".", s)
    s = s.lstrip("._-")[:MAX_SLUG].rstrip(".") or "doc"
    return s


def build_id_map(external_ids: Iterable[str]) -> IdMap:
    """Deterministic, order-independent, one-to-one: colliding slugs all get a hash suffix."""
    ids = list(dict.fromkeys(external_ids))
    counts = Counter(slug(i) for i in ids)
    out: dict[str, str] = {}
    for i in ids:
        s = slug(i)
        if counts[s] > 1:
            s = f"{s}-{hashlib.sha256(i.encode('utf-8')).hexdigest()[:8]}"
        out[i] = validate_doc_id(s)
    if len(set(out.values())) != len(out):  # a suffixed slug equal to another plain one: astronomically rare
        raise ValueError("external doc ids do not map one-to-one onto policyqa ids")
    return IdMap(out)


def lead_date(text: str) -> tuple[str, str] | None:
    """(ISO date, the matched words) when the text opens with a date; the most precise valid prefix."""
    m = _LEAD_DATE.match(text)
    if not m:
        return None
    year, month, day = m.group(1), m.group(2), m.group(3)
    parts = [year]
    if month and 1 <= int(month) <= 12:
        parts.append(f"{int(month):02d}")
        if day:
            try:
                dt.date(int(year), int(month), int(day))
                parts.append(f"{int(day):02d}")
            except ValueError:
                pass
    if not 1900 <= int(year) <= 2100:
        return None
    return "-".join(parts), m.group(0).strip()


def read_corpus(path: Path) -> list[ExternalDoc]:
    docs: list[ExternalDoc] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                docs.append(ExternalDoc(str(row["doc_id"]), str(row.get("title") or ""), str(row["text"])))
    return docs


def source_label(stats: Mapping[str, Any]) -> str:
    name = " ".join(str(stats[k]) for k in ("dataset", "split") if stats.get(k))
    repo = str(stats.get("source_repo") or "")
    commit = str(stats.get("source_commit") or "")[:7]
    licence = str(stats.get("license") or "").split(" (")[0]
    where = f"{repo}@{commit}" if repo and commit else repo
    return ", ".join(p for p in (name, where, licence) if p) or "external set"


def front_matter(doc: ExternalDoc, safe_id: str, set_name: str, source: str) -> dict[str, Any]:
    found = lead_date(doc.text)
    placeholder = PLACEHOLDER_DATES.get(set_name, DEFAULT_PLACEHOLDER_DATE)
    date, evidence = (found[0], f"passage opens with {found[1]}") if found else (
        placeholder, f"placeholder: the passage has no leading date ({set_name} default {placeholder})")
    return {
        "doc_id": safe_id,
        "title": doc.title.strip() or doc.external_id,
        "date": date,
        "date_inferred": True,
        "date_evidence": evidence,
        "source": source,
        "external_id": doc.external_id,
        "external_set": set_name,
        "cleaning": VERBATIM,
    }


def render(doc: ExternalDoc, safe_id: str, set_name: str, source: str) -> str:
    """The stored file: the same form as corpus.documents.render_document, dumped with libyaml when present
    (several times faster on thousands of passages; the output is identical)."""
    body = doc.text if doc.text.endswith("\n") else doc.text + "\n"
    meta = front_matter(doc, safe_id, set_name, source)
    dumper = getattr(yaml, "CSafeDumper", None)
    if dumper is None:  # pragma: no cover - libyaml is part of the PyYAML wheels
        return render_document(meta, body)
    head = yaml.dump(meta, Dumper=dumper, allow_unicode=True, sort_keys=False, default_flow_style=False)
    return f"---\n{head}---\n{body}"


def is_external(name: str, external_dir: Path | None = None) -> bool:
    """A set with its own corpus: passages (corpus.jsonl) or a folder of original files (source.json)."""
    folder = (external_dir or evalsets.EXTERNAL_DIR) / name
    return (folder / "corpus.jsonl").is_file() or (folder / rawfiles.SOURCE_FILE).is_file()


def is_raw_files(name: str, external_dir: Path | None = None) -> bool:
    """A set whose corpus is a folder of original files ingested through the upload path (eval/rawfiles.py)."""
    return ((external_dir or evalsets.EXTERNAL_DIR) / name / rawfiles.SOURCE_FILE).is_file()


def set_dir(name: str, external_dir: Path | None = None) -> Path:
    folder = (external_dir or evalsets.EXTERNAL_DIR) / name
    if not is_external(name, external_dir):
        raise FileNotFoundError(f"external set {name!r} has no corpus ({folder / 'corpus.jsonl'} or "
                                f"{folder / rawfiles.SOURCE_FILE})")
    return folder


def materialise(name: str, *, external_dir: Path | None = None, cache_dir: Path | None = None,
                raw_dir: Path | None = None) -> Materialised:
    """Write eval/cache/<name>/corpus/*.md and ids.json from eval/external/<name>/corpus.jsonl, or ingest the
    files source.json names (`raw_dir` overrides its folder: tests)."""
    folder = set_dir(name, external_dir)
    if is_raw_files(name, external_dir):
        return _materialise_files(name, folder, (cache_dir or CACHE_DIR) / name, raw_dir)
    docs = read_corpus(folder / "corpus.jsonl")
    stats_path = folder / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else {}
    source = source_label(stats) if stats else name
    ids = build_id_map(d.external_id for d in docs)
    if len(ids.to_safe) != len(docs):
        dupes = sorted(i for i, n in Counter(d.external_id for d in docs).items() if n > 1)
        raise ValueError(f"external set {name!r}: duplicate doc ids {dupes[:5]}")
    root = (cache_dir or CACHE_DIR) / name
    corpus_dir = root / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    written = unchanged = 0
    wanted: set[str] = set()
    for d in docs:
        safe = ids.safe(d.external_id)
        fname = f"{safe}.md"
        wanted.add(fname)
        if rawfiles.write_if_changed(corpus_dir / fname, render(d, safe, name, source).encode("utf-8")):
            written += 1
        else:
            unchanged += 1
    removed = 0
    for p in corpus_dir.glob("*.md"):
        if p.name not in wanted:
            p.unlink()
            removed += 1
    mapping = json.dumps(ids.to_external, ensure_ascii=False, indent=0, sort_keys=True) + "\n"
    rawfiles.write_if_changed(root / IDS_FILE, mapping.encode("utf-8"))
    return Materialised(name, root, corpus_dir, root / "index", ids, written, unchanged, removed)


def _materialise_files(name: str, folder: Path, root: Path, raw_dir: Path | None) -> Materialised:
    source = rawfiles.read_source(folder, raw_dir)
    corpus_dir = root / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    result = rawfiles.ingest(source, corpus_dir)
    ids = IdMap(result.ids)
    mapping = json.dumps(ids.to_external, ensure_ascii=False, indent=0, sort_keys=True) + "\n"
    rawfiles.write_if_changed(root / IDS_FILE, mapping.encode("utf-8"))
    rawfiles.write_report(root, result, source)
    return Materialised(name, root, corpus_dir, root / "index", ids, result.written, result.unchanged,
                        result.removed, result.failed)


def load_id_map(path: Path) -> IdMap:
    """The mapping stored by `materialise` (eval/cache/<name>/ids.json: safe id → original id)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return IdMap({str(e): str(s) for s, e in data.items()})


def external_settings(name: str, settings: Settings, *, external_dir: Path | None = None,
                      cache_dir: Path | None = None, raw_dir: Path | None = None) -> tuple[Settings, Materialised]:
    """Materialise the set; the settings with corpus_dir/index_dir pointing into eval/cache/<name>/."""
    mat = materialise(name, external_dir=external_dir, cache_dir=cache_dir, raw_dir=raw_dir)
    update: dict[str, Any] = {"corpus_dir": mat.corpus_dir, "index_dir": mat.index_dir}
    source = set_dir(name, external_dir) / rawfiles.SOURCE_FILE
    if source.is_file():  # the settings the set's figures are measured with (the regulations: default place 江门)
        update = {**json.loads(source.read_text(encoding="utf-8")).get("settings", {}), **update}
    return settings.model_copy(update=update), mat


def index_is_current(loaded: Any, corpus: Any) -> bool:
    """The loaded generation indexes exactly this corpus: same stored files, same chunks (cleaning included)."""
    manifest = loaded.manifest
    return bool(manifest.get("corpus", {}).get("fingerprint") == corpus.fingerprint()
                and manifest.get("chunker") == corpus.config.as_dict()
                and tuple(loaded.chunks) == tuple(corpus.chunks))


def ensure_index(engine: Any, progress: Any = None) -> Any:
    """Load the set's index; (re)build it first when missing, unreadable, built with another model or
    lexicon, or stale against the materialised corpus. Returns the BuildResult, or None when it was current.

    The embedding cache lives in <index_dir>/cache/, so a rebuild embeds only passages whose text changed.
    """
    from index.generations import IndexError_

    corpus = engine.corpus()
    try:
        if index_is_current(engine.load(), corpus):
            return None
    except IndexError_:
        pass  # none yet, another model/lexicon, or corrupt: build a fresh generation
    result = engine.build(progress, corpus=corpus) if progress is not None else engine.build(corpus=corpus)
    engine.load()
    return result
