"""The documentation stays true to the code: every `policyqa …` command it names exists (with its options),
every POLICYQA_* variable it names is a setting, and every setting is documented in docs/operations.md.

Fast: it builds the CLI's argparse tree and reads the settings' field names; no model, index or server."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from service.cli import build_parser
from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OPERATIONS = REPO / "docs" / "operations.md"

SETTING = re.compile(r"\bPOLICYQA_[A-Z][A-Z0-9_]*")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
# `policyqa` as a command word: at the start, after a space or a path (.venv/bin/policyqa), not policyqa_x
COMMAND = re.compile(r"(?:^|(?<=[\s/(]))policyqa((?:\s+[^\s]+)*)")
STOP = {"&&", "||", "|", ";", ">", ">>", "2>&1", "&", "#", "→", "/"}


def _settings() -> set[str]:
    return {f"POLICYQA_{name.upper()}" for name in Settings.model_fields}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def _root() -> argparse.ArgumentParser:
    parser = build_parser()
    if "eval" not in _subcommands(parser):  # the eval plugin comes by entry point; add it where not installed
        from eval.cli import register

        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                register(action)
    return parser


def _code(text: str) -> list[str]:
    """Code the docs show: fenced blocks line by line, and inline `spans`."""
    pieces = [line for block in FENCE.findall(text) for line in block.splitlines()[1:-1]]
    pieces += SPAN.findall(FENCE.sub("", text))
    return pieces


def command_problems(text: str, root: argparse.ArgumentParser) -> list[str]:
    """Each `policyqa …` in the text's code, walked down the argparse tree: its subcommands must exist, and
    every --option named with it must belong to the command reached."""
    problems = []
    for piece in _code(text):
        for match in COMMAND.finditer(piece):
            words: list[str] = []
            for raw in match.group(1).split():
                if raw in STOP or raw.startswith("#"):
                    break
                words.append(raw)
            parser, path = root, ["policyqa"]
            while words and (subs := _subcommands(parser)):
                word = words[0].strip("[]`")
                if not word or not word[0].isalpha():  # `policyqa` alone, or with a placeholder only
                    break
                choices = word.split("\\|")  # a table's `eval run\|score`: each alternative must exist
                problems += [f"{' '.join(path)} has no subcommand {c!r} ({piece.strip()!r})"
                             for c in choices if c not in subs]
                if len(choices) > 1 or word not in subs:
                    break
                parser, path, words = subs[word], [*path, word], words[1:]
            else:
                known = _options(parser)
                for word in words:
                    for option in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", word.replace("\\|", " ")):
                        if option not in known:
                            problems.append(f"{' '.join(path)} has no option {option} ({piece.strip()!r})")
    return problems


def setting_problems(text: str, settings: set[str]) -> list[str]:
    return [f"{name} is not a setting (service/settings.py)" for name in sorted(set(SETTING.findall(text)))
            if name not in settings]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_named_commands_exist(path: Path) -> None:
    assert command_problems(path.read_text(encoding="utf-8"), _root()) == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_named_settings_exist(path: Path) -> None:
    assert setting_problems(path.read_text(encoding="utf-8"), _settings()) == []


def test_every_setting_is_documented() -> None:
    named = set(SETTING.findall(OPERATIONS.read_text(encoding="utf-8")))
    assert sorted(_settings() - named) == [], "settings missing from docs/operations.md"


def test_docs_name_commands_at_all() -> None:
    """The checks above see the commands the docs name (a regex that matched nothing would pass vacuously)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    seen = {" ".join(m.group(0).split()[:3]) for piece in _code(text) for m in COMMAND.finditer(piece)}
    assert {"policyqa corpus add", "policyqa eval run", "policyqa ask"} <= {s.rstrip('"') for s in seen}


def test_checks_catch_a_wrong_name() -> None:
    root = _root()
    bad = "Run `policyqa corpus add FILE --titel T`, `policyqa eval rnu --set x` and `policyqa index`.\n" \
          "| `policyqa eval run\\|score\\|scroe` | …\n" \
          "```\n.venv/bin/policyqa serach 江门 && policyqa ask -\n```\nwith POLICYQA_REBUILD_DELAY and POLICYQA_PORT."
    problems = command_problems(bad, root)
    assert len(problems) == 4, problems
    assert any("--titel" in p for p in problems) and any("'rnu'" in p for p in problems)
    assert any("'scroe'" in p for p in problems)
    assert any("'serach'" in p for p in problems)
    assert setting_problems(bad, _settings()) == ["POLICYQA_REBUILD_DELAY is not a setting (service/settings.py)"]


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (CJK kept), spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def link_problems(path: Path) -> list[str]:
    problems = []
    for target in LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        if target.startswith(("http:", "https:", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            problems.append(f"{path.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", FENCE.sub("", dest.read_text(encoding="utf-8")), re.M)
            if anchor not in {_slug(h) for h in headings}:
                problems.append(f"{path.name}: {target} (no such heading)")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_lead_somewhere(path: Path) -> None:
    assert link_problems(path) == []


def test_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Top / 顶部\n[ok](#top--顶部) [gone](missing.md) [bad](#nowhere)\n", encoding="utf-8")
    assert link_problems(page) == ["page.md: missing.md (no such file)", "page.md: #nowhere (no such heading)"]
