"""corpus/pipeline.py: loading, cleaning and chunking the stored documents."""

from __future__ import annotations

from corpus.documents import SEEDS_DIR, load_corpus
from corpus.pipeline import PAUSE_EVERY, load_chunked_corpus, process_documents


def test_chunking_gives_way_to_questions_between_batches_of_documents() -> None:
    """A rebuild's chunking calls `pause` (index/answergate.py's wait) before every PAUSE_EVERY documents, and
    pausing changes nothing it produces."""
    docs = load_corpus(SEEDS_DIR).documents * 7  # 35 documents: pauses before the 1st, 17th and 33rd
    calls: list[int] = []
    paused = process_documents(docs, pause=lambda: calls.append(1))
    assert len(calls) == -(-len(docs) // PAUSE_EVERY) == 3
    assert paused.chunks == process_documents(docs).chunks
    assert load_chunked_corpus(SEEDS_DIR, pause=lambda: None).fingerprint() == load_chunked_corpus(SEEDS_DIR).fingerprint()
