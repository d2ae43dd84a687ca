"""The stages as a whole: every runtime requirement is used by some stage, no stage imports what it does not use,
each depends on the code it runs, DVC runs validate before all the others, and the committed .gitignore files
already list what DVC caches."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import ROOT

# requirements.txt distribution -> the module a stage imports.
IMPORTED_AS = {
    "tensorflow-cpu": "tensorflow",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "numpy": "numpy",
    "pandas": "pandas",
    "scikit-learn": "sklearn",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "Jinja2": "jinja2",
    "PyYAML": "yaml",
}
# Requirements no stage imports, and why they are there.
NOT_IMPORTED = {
    "dvc": "the `dvc` command that runs the stages",
    "ruamel.yaml.clib": "the C loader of DVC's YAML parser (a faster no-op `dvc repro`)",
}


def requirements() -> list[str]:
    names = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.match(r"[A-Za-z0-9_.\-]+", line).group(0))
    return names


def stage_modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted((ROOT / "stages").glob("*.py"))}


def imported_modules(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_every_runtime_requirement_is_imported_by_a_stage():
    wanted = requirements()
    assert {"dvc", "numpy", "pandas", "scikit-learn", "seaborn"} <= set(wanted)  # the parser read the file
    unclassified = [name for name in wanted if name not in IMPORTED_AS and name not in NOT_IMPORTED]
    assert unclassified == [], "say which module each new requirement is imported as, or why none is"
    imported = set().union(*(imported_modules(tree) for tree in stage_modules().values()))
    unused = [name for name in wanted if name in IMPORTED_AS and IMPORTED_AS[name] not in imported]
    assert unused == []


def test_no_stage_imports_what_it_does_not_use():
    unused = []
    for module, tree in stage_modules().items():
        source = (ROOT / "stages" / f"{module}.py").read_text().splitlines()
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or getattr(node, "module", None) == "__future__":
                continue
            if "noqa: F401" in source[node.lineno - 1]:  # imported for its side effect, and says so
                continue
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                if name not in used:
                    unused.append(f"stages/{module}.py:{node.lineno} {name}")
    assert unused == []


def test_the_checks_see_an_unused_import():
    tree = ast.parse("import seaborn as sns\nimport pandas as pd\npd.DataFrame()\n")
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert imported_modules(tree) == {"seaborn", "pandas"} and "sns" not in used and "pd" in used


def local_imports(tree: ast.Module) -> set[str]:
    """The stages.* modules a module imports, anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "stages":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stages."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("stages.")}
    return found


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    """Every node reached from `start` by following `graph`'s edges, one or more steps."""
    found: set[str] = set()
    todo = [start]
    while todo:
        for node in graph.get(todo.pop(), ()):
            if node not in found:
                found.add(node)
                todo.append(node)
    return found


def test_every_stage_depends_on_the_code_it_runs():
    """A stage whose code (its module, and every module that imports, transitively) is not among its dvc.yaml
    deps would not rerun when that code changes."""
    import yaml

    modules = stage_modules()
    graph = {name: local_imports(tree) for name, tree in modules.items()}
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        module = re.search(r"python -m stages\.(\w+)", body["cmd"]).group(1)
        runs = {module} | reachable(graph, module)
        listed = {d for d in body["deps"] if d.startswith("stages/") and d.endswith(".py")}
        if any(d.startswith("${paths.fingerprints}/") for d in body["deps"]):
            # A study run checks the fingerprint's hashes of the training code before it trains.
            from stages.fingerprint import TRAINING_CODE

            listed |= {f"stages/{m}.py" for m in (*TRAINING_CODE, "fingerprint")}
        gap = {f"stages/{m}.py" for m in runs} - listed
        if gap:
            missing[name] = sorted(gap)
    assert missing == {}


def dvc_graph() -> tuple[set[str], set[tuple[str, str]]]:
    """DVC's own graph of the pipeline, from `dvc dag --dot`: the stages and the (upstream, downstream) pairs."""
    out = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    nodes = set(re.findall(r'^"([^"]+)";$', out.stdout, re.MULTILINE))
    edges = set(re.findall(r'^"([^"]+)" -> "([^"]+)";$', out.stdout, re.MULTILINE))
    return nodes, edges


def downstream_of(edges: set[tuple[str, str]], start: str) -> set[str]:
    """Every stage that comes after `start`, directly or not."""
    after: dict[str, set[str]] = defaultdict(set)
    for upstream, downstream in edges:
        after[upstream].add(downstream)
    return reachable(after, start)


def test_validate_comes_before_every_other_stage():
    """Only the downloads list validate's marker; every other stage must still come after validate in DVC's
    graph, or a bad value could reach it before validate stops `dvc repro`."""
    nodes, edges = dvc_graph()
    assert {"validate", "download@mnist", "replicate@ex3-4", "report"} <= nodes  # the parser read the graph
    assert downstream_of(edges, "validate") == nodes - {"validate"}
    assert not any(downstream == "validate" for _, downstream in edges)
    # The check sees a stage that nothing connects to validate.
    assert "prepare@mnist_raw" not in downstream_of({e for e in edges if e[0] != "validate"}, "validate")


def test_the_committed_gitignores_list_every_cached_output():
    """DVC adds each cached output to its folder's .gitignore as it writes it. The project commits those files as
    the default params make them, so after a first `dvc repro` Git shows only what is meant to be committed
    (dvc.lock, metrics, curves), not .gitignore files half-written."""
    from dvc.repo import Repo

    expected: dict[str, set[str]] = defaultdict(set)
    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            for out in stage.outs:
                if out.use_cache:
                    path = Path(out.fs_path).relative_to(repo.root_dir)
                    expected[path.parent.as_posix()].add(f"/{path.name}")
    assert {"/mnist.npz", "/cifar10.npz"} <= expected["data/raw"]  # DVC resolved the pipeline
    found = {
        ignore.parent.relative_to(ROOT).as_posix(): set(ignore.read_text().split())
        for top in ("data", "reports")
        for ignore in (ROOT / top).rglob(".gitignore")
    }
    assert found == expected, "write the entries DVC would add (see this test) into the .gitignore files"
