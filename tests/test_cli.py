"""The `policyqa` CLI run for real: `main(argv)` in this process against the session's real index
(`real_engine`), with questions on a real stdin stream and the settings taken from POLICYQA_* variables."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from service import cli

if TYPE_CHECKING:
    from service.engine import Engine

Q1 = "江海区有多少名专职网格员？"
Q2 = "党群服务中心在哪里"
# a blank line between them is skipped; the second ends in CRLF, which is not part of the question as read
STDIN = f"{Q1}\n\n{Q2}\r\n"

# Options of entry-point subcommands (eval/cli.py, not edited here) that have no help text yet. The walk fails
# on anything missing help that is not listed; drop an entry once its command gains help.


@pytest.fixture
def cli_env(real_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Point the CLI's settings (POLICYQA_* variables) at the real test index, model, reader and corpus."""
    for name in list(os.environ):
        if name.startswith("POLICYQA_"):
            monkeypatch.delenv(name)
    s = real_engine.settings
    for field in ("data_dir", "corpus_dir", "index_dir", "model_dir", "reader_dir"):
        value = getattr(s, field, None)
        if value is not None:
            monkeypatch.setenv(f"POLICYQA_{field.upper()}", str(value))
    monkeypatch.setenv("POLICYQA_ENCODER_BACKEND", s.encoder_backend)
    real_engine.refresh()  # compare against the current generation, should another test have built one
    return real_engine


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_cold_ask_loads_both_models_side_by_side_with_one_tokenizer(real_engine: Engine) -> None:
    """`policyqa ask` in a new process: Engine.preload loads the encoder and the reader in two threads at once
    (one lock per model, not the engine's one), and the tokenizer.json they share is parsed once."""
    from index.tokenizer_files import load_tokenizer
    from service.engine import Engine as EngineClass

    engine = EngineClass(real_engine.settings)
    threads = engine.preload()
    assert len(threads) == 2
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive()
    assert engine._encoder is not None and engine._reader is not None  # loaded by the threads, not on first use
    shared = engine.encoder._tokenizer  # type: ignore[attr-defined]
    assert engine.reader.reader._tokenizer is shared
    assert load_tokenizer(real_engine.settings.model_dir / "tokenizer.json") is shared
    assert shared.encode("江门市党员").ids == real_engine.encoder._tokenizer.encode("江门市党员").ids  # type: ignore[attr-defined]
    assert engine.answer("江门市目前有多少名党员？").short_answer == real_engine.answer("江门市目前有多少名党员？").short_answer


# --- ask and search on stdin: every output names its question ------------------------------------------


@pytest.mark.slow
def test_ask_batch_json_carries_each_question(cli_env: Engine, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run_cli(["ask", "-", "--json"], capsys, monkeypatch, STDIN)
    assert rc == 0, err
    rows = json_lines(out)
    assert [r["question"] for r in rows] == [Q1, Q2]
    for r in rows:
        assert "answer" in r and "error" not in r
        assert r["generation"] == cli_env.index.generation


@pytest.mark.slow
def test_ask_plain_prints_a_header_per_question(cli_env: Engine, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run_cli(["ask", "-"], capsys, monkeypatch, STDIN)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"# {Q1}"
    assert f"# {Q2}" in lines
    second = lines.index(f"# {Q2}")
    assert lines[second - 1] == ""  # a blank line between questions
    assert any(line.strip() for line in lines[1:second - 1]), "the first question's answer is missing"
    assert any(line.strip() for line in lines[second + 1:]), "the second question's answer is missing"
    assert "\r" not in out

    # one question on the command line: the answer alone, no echo of what was just typed
    rc, single, err = run_cli(["ask", Q1], capsys, monkeypatch)
    assert rc == 0, err
    assert not single.startswith("#")
    assert single.strip() == "\n".join(lines[1:second - 1]).strip()


@pytest.mark.slow
def test_search_batch_json_and_plain(cli_env: Engine, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run_cli(["search", "-", "--json", "--k", "3"], capsys, monkeypatch, STDIN)
    assert rc == 0, err
    rows = json_lines(out)
    assert [r["question"] for r in rows] == [Q1, Q2]
    assert [r["query"] for r in rows] == [Q1, Q2]
    assert all(1 <= len(r["results"]) <= 3 for r in rows)  # type: ignore[arg-type]

    rc, out, err = run_cli(["search", "-", "--k", "3", "--mode", "sparse"], capsys, monkeypatch, STDIN)
    assert rc == 0, err
    headers = [line for line in out.splitlines() if line.startswith("# ")]
    assert len(headers) == 2
    assert headers[0].startswith(f"# {Q1}  (sparse;")
    assert headers[1].startswith(f"# {Q2}  (sparse;")
    assert re.search(r"^1\. ", out, re.M)  # ranked passages under the headers


@pytest.mark.slow
def test_batch_errors_name_their_question(cli_env: Engine, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A question the engine rejects (here: k above POLICYQA_MAX_K) reports its error under its question; the rest
    still run, and the exit status says something failed."""
    rc, out, _ = run_cli(["search", "-", "--json", "--k", "999"], capsys, monkeypatch, STDIN)
    assert rc == 1
    rows = json_lines(out)
    assert [r["question"] for r in rows] == [Q1, Q2]
    assert all(r["error"]["code"] == "bad_k" for r in rows)  # type: ignore[index]

    rc, out, _ = run_cli(["search", "-", "--k", "999"], capsys, monkeypatch, STDIN)
    assert rc == 1
    lines = out.splitlines()
    assert len(lines) == 5, out
    assert (lines[0], lines[2], lines[3]) == (f"# {Q1}", "", f"# {Q2}")
    assert lines[1].startswith("error: ") and lines[4].startswith("error: ")


# --- index info --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_index_info_summary(cli_env: Engine, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    idx = cli_env.index
    rc, out, err = run_cli(["index", "info"], capsys, monkeypatch)
    assert rc == 0, err
    fields = {line[:11].strip(): line[12:] for line in out.splitlines()}  # "label       value"
    assert list(fields) == ["generation", "created", "counts", "model", "encoder", "build", "size", "index dir",
                            "path"]
    assert fields["generation"] == idx.generation
    assert f"{len(idx.chunks)} chunks" in fields["counts"]
    assert f"{len(idx.documents)} documents" in fields["counts"]
    assert fields["created"] == idx.manifest["created_at"]
    assert idx.manifest["model"]["name"] in fields["model"]
    assert fields["encoder"].startswith(idx.manifest["encoder"]["backend"])
    assert re.fullmatch(r"[\d.]+ s \(\d+ embedded, \d+ from cache\)", fields["build"])
    assert re.fullmatch(r"[\d.]+ (KiB|MiB|GiB)", fields["size"])
    assert Path(fields["index dir"]) == Path(cli_env.settings.index_dir).resolve()
    assert Path(fields["path"]) == idx.path.resolve()


@pytest.mark.slow
def test_index_info_json_is_the_manifest(cli_env: Engine, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run_cli(["index", "info", "--json"], capsys, monkeypatch)
    assert rc == 0, err
    data = json.loads(out)
    assert data["generation"] == cli_env.index.generation
    assert data == cli_env.index.manifest
    assert "\n  " in out  # pretty-printed
    assert "\\u" not in out  # ensure_ascii=False


def test_index_info_without_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYQA_INDEX_DIR", str(tmp_path / "empty"))
    rc, out, err = run_cli(["index", "info"], capsys, monkeypatch)
    assert rc == 2
    assert out == ""
    assert "no index" in err and "policyqa index build" in err


def test_human_bytes() -> None:
    assert cli._human_bytes(0) == "0 B"
    assert cli._human_bytes(1023) == "1023 B"
    assert cli._human_bytes(1536) == "1.5 KiB"
    assert cli._human_bytes(5 * 1024**3) == "5.0 GiB"


# --- help text on every option and positional ----------------------------------------------------------


def actions_without_help(parser: argparse.ArgumentParser, path: str = "policyqa") -> Iterator[str]:
    """Every subcommand, option and positional of the parser tree that has no help text."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    yield f"{path} {name} (subcommand)"
                yield from actions_without_help(sub, f"{path} {name}")
        elif not action.help:
            name = max(action.option_strings, key=len) if action.option_strings else action.dest
            yield f"{path} {name}"


def test_help_walk_finds_missing_help() -> None:
    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--fine", help="has help")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("a")
    s.add_argument("target")
    s.add_argument("--flag", "-f", action="store_true")
    assert sorted(actions_without_help(p, "x")) == ["x a (subcommand)", "x a --flag", "x a target"]


def test_every_builtin_command_has_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_extra_commands", list)  # the commands service/cli.py defines itself
    parser = cli.build_parser()
    assert list(actions_without_help(parser)) == []
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"corpus", "model", "index", "search", "ask", "serve"} <= set(top.choices)


def test_whole_parser_help_walk_including_entry_points() -> None:
    parser = cli.build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    plugins = {ep.name for ep in entry_points(group="policyqa.commands")}
    assert plugins <= set(top.choices), "an installed policyqa.commands entry point added no subcommand"
    assert {"eval", "calibrate", "feedback"} <= set(top.choices)  # eval/cli.py's, fitting included
    missing = set(actions_without_help(parser))
    assert not missing, f"options without help: {sorted(missing)}"


def test_corpus_edit_corrects_the_front_matter(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from corpus.documents import load_corpus, split_document

    for name in list(os.environ):
        if name.startswith("POLICYQA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("POLICYQA_DATA_DIR", str(tmp_path))
    corpus = tmp_path / "documents"
    corpus.mkdir()
    stored = corpus / "reg.md"
    stored.write_text("---\ntitle: No:0000001\nsource: 测试\n---\n江门市文明行为促进条例\n\n第一条　正文。\n",
                      encoding="utf-8")
    body = split_document(stored.read_bytes())[1]
    rc, out, err = run_cli(["corpus", "edit", "reg", "--title", "江门市文明行为促进条例", "--date", "2021-03-18",
                            "--place", "江门市", "--set", "effective_date=2021-05-01", "--json"], capsys, monkeypatch)
    assert rc == 0, err
    row = json_lines(out)[0]
    assert row["changed"] == ["title", "date", "place", "effective_date"] and row["date"] == "2021-03-18"
    doc = load_corpus(corpus).by_id()["reg"]
    assert doc.title == "江门市文明行为促进条例" and doc.extra["effective_date"] == "2021-05-01"
    assert doc.raw == body and (corpus / str(row["trashed_as"])).is_file()
    rc, out, err = run_cli(["corpus", "edit", "reg", "--set", "effective_date=2021-02-30"], capsys, monkeypatch)
    assert rc == 2 and "bad_date" in err
    rc, out, err = run_cli(["corpus", "edit", "missing", "--title", "x"], capsys, monkeypatch)
    assert rc == 2 and "document_not_found" in err
    rc, out, err = run_cli(["corpus", "edit", "reg", "--set", "no-equals"], capsys, monkeypatch)
    assert rc == 2 and "KEY=VALUE" in err
