"""How well regulations' metadata is read from the text, on the real corpus (../shared/corpora/regulations/raw).

    python -m corpus.formats.measure_regulations [--raw DIR] [--json]

(default DIR: $POLICYQA_REGULATIONS_DIR, else ../shared/corpora/regulations/raw beside the repository)

File names are `<province>__<year>_<title>.<ext>`: the name is the truth for measuring only. For every file it
prints what is wrong; then: names found equal to the regulation's name, dates found (passed, approved,
revised, published, in force), dates not written in the text (invented: must be 0), places found and whether
they open the name, provinces equal to the file name's, and the version groups (corpus/versions.py).

Text comes from `corpus.formats.extract` where it reads the file (.docx; .doc too once a .doc reader is
there). Otherwise, for measuring only: a Word 97 file through `antiword` (else `catdoc`) when installed, and a
package python-docx refuses, or a Word 2003 XML file, by its `w:t` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corpus.formats import FormatError, document_date, extract
from corpus.formats.policy import iso_date
from corpus.formats.regulation import DATE_KEYS
from corpus.versions import version_status

REPO = Path(__file__).resolve().parents[2]
# ../shared beside the clone (as in CI); POLICYQA_REGULATIONS_DIR points elsewhere (a worktree's checkout)
RAW = Path(os.environ.get("POLICYQA_REGULATIONS_DIR") or REPO.parent / "shared" / "corpora" / "regulations" / "raw")
_DATE = re.compile(r"(?:19|20)\d{2}年\d{1,2}月\d{1,2}日|[〇○零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,3}月"
                   r"[一二三四五六七八九十]{1,3}日")
_WT = re.compile(r"<w:t(?:\s[^>]*)?>([^<]*)</w:t>")
_PARA = re.compile(r"<w:p[\s>].*?</w:p>", re.S)


@dataclass(frozen=True)
class Row:
    """What one file gave, for the version grouping (corpus.versions.Versioned)."""

    doc_id: str
    title: str
    date: str
    extra: Mapping[str, str] = field(default_factory=dict)


def truth(path: Path) -> tuple[str, str, str]:
    """(province, year, regulation name) from `<province>__<year>_<title>.<ext>`."""
    province, _, rest = path.stem.partition("__")
    year, _, name = rest.partition("_")
    return province, year, name


def _xml_text(xml: str) -> str:
    return "\n\n".join("".join(_WT.findall(p)) for p in _PARA.findall(xml))


def read_text(path: Path) -> tuple[str, str, dict[str, str]]:
    """(how, text, metadata from extract or {}) for one file."""
    data = path.read_bytes()
    if data.startswith(b"PK"):
        try:
            ex = extract(data, path.with_suffix(".docx").name, "docx")
            return "extract", ex.text, ex.metadata
        except FormatError:
            with zipfile.ZipFile(path) as zf:  # a package python-docx refuses (dangling relationship)
                return "xml", _xml_text(zf.read("word/document.xml").decode("utf-8", "replace")), {}
    try:
        ex = extract(data, path.name)  # a .doc reader, when there is one
        return "extract", ex.text, ex.metadata
    except FormatError:
        pass
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        for tool, args in (("antiword", ["-m", "UTF-8.txt", "-w", "0"]), ("catdoc", ["-d", "utf-8", "-w"])):
            if shutil.which(tool):
                out = subprocess.run([tool, *args, str(path)], capture_output=True, check=False)
                if out.returncode == 0 and out.stdout.strip():
                    return tool, out.stdout.decode("utf-8", "replace"), {}
        return "unread", "", {}
    return "xml", _xml_text(data.decode("utf-8", "replace")), {}


def measure(raw: Path) -> dict[str, object]:
    from corpus.formats.regulation import find_regulation_metadata

    files = sorted(p for p in raw.iterdir() if p.suffix.lower() in (".doc", ".docx"))
    how: Counter[str] = Counter()
    found: Counter[str] = Counter()
    title_misses: list[str] = []
    place_misses: list[str] = []
    province_misses: list[str] = []
    invented: list[str] = []
    undated: list[str] = []
    rows: list[Row] = []
    for path in files:
        province, _year, name = truth(path)
        kind, text, extracted = read_text(path)
        how[kind] += 1
        meta = {k: v for k, v in extracted.items()} if extracted else find_regulation_metadata(text)
        if not extracted and meta:
            meta = {**meta}
        for key in ("title", *DATE_KEYS, "place", "province", "issuer", "version"):
            found[key] += bool(meta.get(key))
        if meta.get("title") != name:
            title_misses.append(f"{path.name}: {meta.get('title')!r}")
        place = meta.get("place", "")
        stem = re.sub(r"(?:市|省|自治区|自治州|自治县|县)$", "", place)
        if not place or not name.startswith(stem):
            place_misses.append(f"{path.name}: {place!r}")
        if meta.get("province") != province:
            province_misses.append(f"{path.name}: {meta.get('province')!r}")
        written = {iso_date(m.group(0)) for m in _DATE.finditer(re.sub(r"\s+", "", text))}
        for key in DATE_KEYS:
            if meta.get(key) and meta[key] not in written:
                invented.append(f"{path.name}: {key} {meta[key]}")
        date, _evidence = document_date(meta)
        if date is None:
            undated.append(path.name)
        elif date not in written:
            invented.append(f"{path.name}: date {date}")
        rows.append(Row(path.name, str(meta.get("title") or path.stem), date or "", meta))
    status = version_status(rows)
    groups: dict[str, list[str]] = {}
    for row in rows:
        info = status[row.doc_id]
        if info.group:
            groups.setdefault(info.group, []).append(
                f"{row.extra.get('version', '?')} {'current' if info.current else 'superseded'} {row.doc_id}")
    versions = {g: sorted(m) for g, m in groups.items() if len(m) > 1}
    return {"files": len(files), "text_from": dict(how), "found": dict(found),
            "titles_equal": len(files) - len(title_misses), "title_misses": title_misses,
            "places_opening_the_name": len(files) - len(place_misses), "place_misses": place_misses,
            "provinces_equal": len(files) - len(province_misses), "province_misses": province_misses,
            "dates_not_in_text": invented, "undated": undated, "version_groups": versions}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", type=Path, default=RAW, help="folder of the regulation files (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    args = p.parse_args(argv)
    if not args.raw.is_dir():
        print(f"no folder {args.raw}", file=sys.stderr)
        return 2
    r = measure(args.raw)
    if args.json:
        print(json.dumps(r, ensure_ascii=False, indent=1))
        return 0
    n = r["files"]
    found = r["found"]
    assert isinstance(found, dict)
    print(f"files: {n}; text from: {r['text_from']}")
    print(f"names equal to the regulation's name: {r['titles_equal']}/{n}")
    for miss in r["title_misses"]:  # type: ignore[attr-defined]
        print(f"  name miss: {miss}")
    print("dates found: " + ", ".join(f"{k} {found.get(k, 0)}" for k in DATE_KEYS))
    print(f"dates not written in the text (invented): {len(r['dates_not_in_text'])}")  # type: ignore[arg-type]
    for miss in r["dates_not_in_text"]:  # type: ignore[attr-defined]
        print(f"  invented: {miss}")
    print(f"undated (no date found, none made up): {len(r['undated'])}")  # type: ignore[arg-type]
    print(f"places found: {found.get('place', 0)}/{n}; opening the name: {r['places_opening_the_name']}/{n}")
    for miss in r["place_misses"]:  # type: ignore[attr-defined]
        print(f"  place miss: {miss}")
    print(f"provinces equal to the file name's: {r['provinces_equal']}/{n}")
    for miss in r["province_misses"]:  # type: ignore[attr-defined]
        print(f"  province miss: {miss}")
    print(f"issuers found: {found.get('issuer', 0)}/{n}; versions found: {found.get('version', 0)}/{n}")
    groups = r["version_groups"]
    assert isinstance(groups, dict)
    print(f"version groups (same place and name, more than one file): {len(groups)}")
    for g, members in groups.items():
        print(f"  {g}: " + "; ".join(members))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
