"""jieba segmentation for BM25: a private Tokenizer with the domain dictionary and stopwords."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from pathlib import Path

import jieba

# a dictionary word this frequent is a common word (气候 6832, 工业 26775), unless tagged as a name
COMMON_FREQ = 1000
_NAME_TAGS = frozenset({"ns", "nr", "nrt", "nrfg", "nz", "nt"})

LEXICON_DIR = Path(__file__).resolve().parent / "lexicon"
USERDICT = LEXICON_DIR / "userdict.txt"
STOPWORDS = LEXICON_DIR / "stopwords.txt"

_KEEP = re.compile(r"[\w\u4e00-\u9fff%％]", re.UNICODE)
_ONLY_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)


def lexicon_hash(userdict: Path = USERDICT, stopwords: Path = STOPWORDS) -> str:
    h = hashlib.sha256()
    for p in (userdict, stopwords):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _read_stopwords(path: Path) -> frozenset[str]:
    words = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(w for w in words if w and not w.startswith("#"))


class Segmenter:
    """Not jieba's global tokenizer: the user dictionary stays private to this object."""

    def __init__(self, userdict: Path = USERDICT, stopwords: Path = STOPWORDS) -> None:
        self.userdict = userdict
        self.stopwords_path = stopwords
        self.stopwords = _read_stopwords(stopwords)
        self.hash = lexicon_hash(userdict, stopwords)
        self._tokenizer = jieba.Tokenizer()
        self._ready = False
        self._tags: dict[str, str] | None = None  # jieba's part-of-speech table, read on first use
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" chatter is not ours to print
                self._tokenizer.initialize()
                self._tokenizer.load_userdict(str(self.userdict))
                self._ready = True

    def words(self, text: str) -> list[str]:
        """Plain segmentation (for content-word overlap), punctuation and whitespace removed."""
        self._ensure()
        return [w for w in self._tokenizer.lcut(text, HMM=True) if w.strip() and not _ONLY_PUNCT.match(w)]

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        """Plain segmentation as character spans of ``text`` (punctuation included)."""
        self._ensure()
        return [(a, b) for _w, a, b in self._tokenizer.tokenize(text, HMM=True)]

    def tokens(self, text: str) -> list[str]:
        """BM25 terms: search-mode segmentation (words and their sub-words), lower-cased, no stopwords."""
        self._ensure()
        out: list[str] = []
        for w in self._tokenizer.cut_for_search(text.lower(), HMM=True):
            w = w.strip()
            if not w or w in self.stopwords or not _KEEP.search(w):
                continue
            out.append(w)
        return out

    def common_word(self, word: str) -> bool:
        """A frequent word of jieba's dictionary that is not a proper name (气候, 工业, 撤; not 江城, 荷塘)."""
        self._ensure()
        if self._tokenizer.FREQ.get(word, 0) < COMMON_FREQ:
            return False
        if self._tags is None:
            import jieba.posseg  # its HMM tables load on import: only when a place word is checked

            with self._lock:
                if self._tags is None:
                    tags = dict(jieba.posseg.POSTokenizer(self._tokenizer).word_tag_tab)
                    tags.update(self._tokenizer.user_word_tag_tab)
                    self._tags = tags
        return self._tags.get(word, "n") not in _NAME_TAGS

    def content_words(self, text: str) -> list[str]:
        return [w for w in self.words(text.lower()) if w not in self.stopwords]
