"""The stages as a whole: every runtime requirement is used by some stage, and no stage imports what it does not use."""

from __future__ import annotations

import ast
import re

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
        runs, todo = set(), [module]
        while todo:
            current = todo.pop()
            if current not in runs:
                runs.add(current)
                todo.extend(graph[current])
        listed = {d for d in body["deps"] if d.startswith("stages/") and d.endswith(".py")}
        if any(d.startswith("${paths.fingerprints}/") for d in body["deps"]):
            # A study run checks the fingerprint's hashes of the training code before it trains.
            from stages.fingerprint import TRAINING_CODE

            listed |= {f"stages/{m}.py" for m in (*TRAINING_CODE, "fingerprint")}
        gap = {f"stages/{m}.py" for m in runs} - listed
        if gap:
            missing[name] = sorted(gap)
    assert missing == {}
