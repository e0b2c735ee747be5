from __future__ import annotations

import itertools

from corpus.chunking import ChunkerConfig, chunk_document
from corpus.cleaning import clean_document
from corpus.documents import parse_document
from corpus.pipeline import ChunkedCorpus
from corpus.sentences import ends_sentence, sentence_spans


def test_every_chunk_is_an_exact_slice(seed_corpus: ChunkedCorpus) -> None:
    assert len(seed_corpus.chunks) > 50
    for c in seed_corpus.chunks:
        assert c.text == seed_corpus.cleaned[c.doc_id].text[c.start:c.end]
        assert c.text.strip() == c.text and c.text
        assert c.date == seed_corpus.document(c.doc_id).date  # type: ignore[union-attr]


def test_chunk_fields_and_ids(seed_corpus: ChunkedCorpus) -> None:
    ids = [c.chunk_id for c in seed_corpus.chunks]
    assert len(ids) == len(set(ids))
    for doc in seed_corpus.documents:
        mine = [c for c in seed_corpus.chunks if c.doc_id == doc.doc_id]
        assert [c.ordinal for c in mine] == list(range(len(mine)))
        assert all(c.title for c in mine)


def test_chunks_respect_max_length_and_sentences(seed_corpus: ChunkedCorpus) -> None:
    cfg = seed_corpus.config
    for c in seed_corpus.chunks:
        if c.kind != "body":
            continue
        spans = sentence_spans(c.text)
        if len(spans) > 1:
            assert len(c.text) <= cfg.max_chars, c.chunk_id
        # never cut inside a sentence: a chunk ends at a sentence end or at a paragraph that has none
        text = seed_corpus.cleaned[c.doc_id].text
        assert ends_sentence(c.text) or c.end == len(text) or text[c.end] == "\n", c.chunk_id
        assert c.start == 0 or text[c.start - 1] in "\n。！？；…”’」』)）!?;", c.chunk_id


def test_long_section_is_split_with_overlap(seed_corpus: ChunkedCorpus) -> None:
    doc = seed_corpus.documents[0]
    small = chunk_document(seed_corpus.cleaned[doc.doc_id], ChunkerConfig(max_chars=120, overlap_chars=60))
    assert len(small) > len([c for c in seed_corpus.chunks if c.doc_id == doc.doc_id])
    overlaps = sum(1 for a, b in itertools.pairwise(small)
                   if a.section == b.section and b.start < a.end)
    assert overlaps > 0


def test_sentence_longer_than_max_stays_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    long_sentence = "江门" + "持续推进基层治理" * 80 + "。"
    body = f"\n标题一行\n\n导语一句。\n\n## 小节\n\n{long_sentence}短句收尾。\n"
    path = tmp_path / "x.md"
    path.write_text(f"---\ntitle: 标题一行\ndate: '2024'\nsource: 测试\n---\n{body}", encoding="utf-8")
    clean = clean_document(parse_document(path.read_bytes(), path))
    chunks = chunk_document(clean, ChunkerConfig(max_chars=100, overlap_chars=20))
    assert [c.text for c in chunks] == ["导语一句。", long_sentence, "短句收尾。"]
    assert chunks[1].section == ("小节",)


def test_sentence_spans() -> None:
    text = "第一句。第二句！“第三句？”第四句；没有结尾"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["第一句。", "第二句！", "“第三句？”", "第四句；", "没有结尾"]
