"""tokenizer.json files parsed once per process: the e5 encoder and the reader assembled on it ship the same
file (250k pieces), and parsing it costs ~1 s of CPU with the GIL held, a sixth of a cold `policyqa ask`.

The shared object is set to no padding and no truncation (both users cut windows themselves); callers must not
change its settings.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_lock = threading.Lock()
_by_content: dict[str, Tokenizer] = {}


def load_tokenizer(path: Path) -> Tokenizer:
    """The parsed tokenizer of `path`, shared with any earlier load of a file with the same bytes."""
    from tokenizers import Tokenizer

    data = Path(path).read_bytes()
    key = hashlib.sha256(data).hexdigest()
    with _lock:  # a second thread asking for the same file waits for the first parse instead of repeating it
        tok = _by_content.get(key)
        if tok is None:
            tok = Tokenizer.from_str(data.decode("utf-8"))
            tok.no_padding()
            tok.no_truncation()
            _by_content[key] = tok
        return tok
