"""Structure figures for a folder of regulations (Word/PDF/text files), as the pipeline sees them:

    python -m corpus.structure_report [../shared/corpora/regulations/raw]

Each file is extracted (corpus.formats), cleaned and chunked with the default chunker. Printed as JSON: how many
files extract, how many are recognised as regulations, their articles, the chunk-length distribution, the chunks
that share several short articles or hold a piece of a long one, and the chunks that cross an article boundary
(a line starting an article outside the chunk's own articles: 0 expected).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path

from corpus.chunking import chunk_document
from corpus.cleaning import clean_document
from corpus.documents import DocumentError, parse_document, render_document
from corpus.structure import article_start, articles_in

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "regulations" / "raw"


def _distribution(values: list[int]) -> dict[str, float]:
    xs = sorted(values)
    if not xs:
        return {}
    out: dict[str, float] = {f"p{int(q * 100)}": xs[min(len(xs) - 1, int(q * len(xs)))]
                             for q in (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)}
    return {**out, "max": xs[-1], "mean": round(statistics.mean(xs), 1), "n": len(xs)}


def measure(folder: Path) -> dict[str, object]:
    from corpus.formats import extract

    failed: Counter[str] = Counter()
    documents = regulations = articles = toc = merged = 0
    lengths: list[int] = []
    article_lengths: list[int] = []
    crossing: list[str] = []
    split: Counter[tuple[str, tuple[int, int]]] = Counter()
    not_regulations: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            ex = extract(path.read_bytes(), path.name)
        except DocumentError as exc:
            failed[exc.code] += 1
            continue
        meta = {"title": ex.metadata.get("title") or path.stem, "date": "2000", "source": path.name}
        doc = parse_document(render_document(meta, ex.text).encode("utf-8"), Path("report.md"))
        clean = clean_document(doc)
        chunks = chunk_document(clean)
        documents += 1
        lengths += [len(c.text) for c in chunks]
        labels = {b.article for b in clean.blocks if b.article}
        if not labels:
            not_regulations.append(path.name)
            continue
        regulations += 1
        articles += len(labels)
        toc += any(r.reason == "table_of_contents" for r in clean.removed)
        for c in chunks:
            span = articles_in(c.section)
            starts = [a.number for line in c.text.split("\n") if (a := article_start(line)) is not None]
            if span is None:
                if starts:
                    crossing.append(f"{path.name}: {c.chunk_id} {c.section}")
                continue
            article_lengths.append(len(c.text))
            merged += span[0] != span[1]
            split[(path.name, span)] += span[0] == span[1]
            if any(not span[0] <= n <= span[1] for n in starts):
                crossing.append(f"{path.name}: {c.chunk_id} {c.section}")
    return {
        "files": documents + sum(failed.values()), "extracted": documents, "not_extracted": dict(failed),
        "regulations": regulations, "not_regulations": not_regulations, "articles": articles,
        "regulations_with_table_of_contents_dropped": toc, "chunks": len(lengths),
        "chunk_chars": _distribution(lengths), "article_chunk_chars": _distribution(article_lengths),
        "chunks_of_several_articles": merged,
        "articles_in_several_chunks": sum(1 for n in split.values() if n > 1),
        "chunks_crossing_an_article_boundary": len(crossing), "crossing": crossing[:20],
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else DEFAULT_DIR
    if not folder.is_dir():
        print(f"没有这个文件夹 / no such folder: {folder}", file=sys.stderr)
        return 2
    print(json.dumps(measure(folder), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
