"""The stages and the library as a whole: every runtime requirement is used, no module imports what it does not use,
no stage imports another stage, each stage depends on the code it runs, DVC runs sources and validate before all the
others, and the committed .gitignore files already list what DVC caches."""

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
    "scipy": "scipy",
    "statsmodels": "statsmodels",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "Jinja2": "jinja2",
    "Babel": "babel",
    "PyYAML": "yaml",
    "pydantic": "pydantic",
    "ruamel.yaml": "ruamel",
}
# Requirements no stage imports, and why they are there.
NOT_IMPORTED = {
    "dvc": "the `dvc` command that runs the stages",
    "ruamel.yaml.clib": "the C loader of DVC's YAML parser (a faster no-op `dvc repro`)",
    "dvc-ssh": "DVC's SSH remotes (a class's remote on a lab server)",
}


def requirements() -> list[str]:
    names = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.match(r"[A-Za-z0-9_.\-]+", line).group(0))
    return names


PACKAGES = ("stages", "denselab")


def module_files() -> dict[str, Path]:
    """Every module of the stages and of the library (a package as its `__init__.py`), by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def modules() -> dict[str, ast.Module]:
    """Every module of the stages and of the library, parsed, by dotted name."""
    return {name: ast.parse(path.read_text(), str(path)) for name, path in module_files().items()}


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
    assert {"dvc", "numpy", "pandas", "seaborn"} <= set(wanted)  # the parser read the file
    unclassified = [name for name in wanted if name not in IMPORTED_AS and name not in NOT_IMPORTED]
    assert unclassified == [], "say which module each new requirement is imported as, or why none is"
    imported = set().union(*(imported_modules(tree) for tree in modules().values()))
    unused = [name for name in wanted if name in IMPORTED_AS and IMPORTED_AS[name] not in imported]
    assert unused == []


def test_no_module_imports_what_it_does_not_use():
    unused = []
    files = module_files()
    for module, tree in modules().items():
        source = files[module].read_text().splitlines()
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or getattr(node, "module", None) == "__future__":
                continue
            if "noqa: F401" in source[node.lineno - 1]:  # imported for its side effect, and says so
                continue
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                if name not in used:
                    unused.append(f"{module}:{node.lineno} {name}")
    assert unused == []


def test_the_checks_see_an_unused_import():
    tree = ast.parse("import seaborn as sns\nimport pandas as pd\npd.DataFrame()\n")
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert imported_modules(tree) == {"seaborn", "pandas"} and "sns" not in used and "pd" in used


def local_imports(tree: ast.Module) -> set[str]:
    """The project's modules (stages.*, denselab.*) a module imports, anywhere in it (function-level imports
    included), by dotted name."""
    found = set()
    known = module_files()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known.keys()
            found |= {node.module, *submodules} if node.module not in PACKAGES else submodules or {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES}
    return found


def test_no_stage_imports_another_stage():
    """Stages are entry points: what two stages share lives in the library (denselab), never in a stage."""
    graph = {name: local_imports(tree) for name, tree in modules().items()}
    assert len(graph) > 25 and "denselab.training.models" in graph["denselab.training.fit"] | reachable(
        graph, "denselab.training.fit"
    )
    crossing = {name: sorted(m for m in imports if m.startswith("stages.")) for name, imports in graph.items()}
    assert {name: found for name, found in crossing.items() if found} == {}
    # The check sees a stage that imports another.
    assert local_imports(ast.parse("from stages.train import train\nfrom stages import prepare")) == {
        "stages.train",
        "stages.prepare",
    }


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
    """A stage reruns when a module it runs changes because it depends on its file of the sources stage, which lists
    its module and every module it imports, directly or not. Checked against this test's own walk of the imports,
    and the sources stage's own deps (the data that code reads, also in the file, is test_sources' business)."""
    import yaml

    from stages.sources import sources

    graph = {name: local_imports(tree) for name, tree in modules().items()}
    known = module_files()
    listed = sources()
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["sources"]["deps"] == list(PACKAGES)
    for name, stage in stages.items():
        body = stage.get("do", stage)
        module = re.search(r"python -m stages\.(\w+)", body["cmd"]).group(1)
        assert module == name, "stage name = module name"
        if name == "sources":
            continue
        runs = {f"stages.{module}"} | reachable(graph, f"stages.{module}")
        packages = {".".join(m.split(".")[:i]) for m in runs for i in range(1, m.count(".") + 1)}  # their __init__
        files = {known[m].relative_to(ROOT).as_posix() for m in runs | packages}
        code = {path for path in listed[module] if path.endswith(".py")}
        assert code == files, name
        assert "${paths.sources}/" + f"{module}.json" in body["deps"], name
    assert "denselab/training/models.py" in listed["train"] and "denselab/training/models.py" not in listed["report"]


def dvc_graph() -> tuple[set[str], set[tuple[str, str]]]:
    """DVC's own graph of the pipeline, from `dvc dag --dot`: the stages and the (upstream, downstream) pairs."""
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "dag", "--dot"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    nodes = set(re.findall(r'^"([^"]+)";$', out.stdout, re.MULTILINE))
    edges = set(re.findall(r'^"([^"]+)" -> "([^"]+)";$', out.stdout, re.MULTILINE))
    return nodes, edges


def downstream_of(edges: set[tuple[str, str]], start: str) -> set[str]:
    """Every stage that comes after `start`, directly or not."""
    after: dict[str, set[str]] = defaultdict(set)
    for upstream, downstream in edges:
        after[upstream].add(downstream)
    return reachable(after, start)


def test_sources_and_validate_come_before_every_other_stage():
    """Only the downloads list validate's marker; every other stage must still come after validate in DVC's
    graph, or a bad value could reach it before validate stops `dvc repro`. Every stage comes after sources."""
    nodes, edges = dvc_graph()
    assert {"sources", "validate", "download@mnist", "replicate@ex3-4", "report"} <= nodes  # the parser read the graph
    assert downstream_of(edges, "sources") == nodes - {"sources"}
    assert downstream_of(edges, "validate") == nodes - {"validate", "sources"}
    assert not any(downstream in ("validate", "sources") for upstream, downstream in edges if upstream != "sources")
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


# The stages main's results do not hold: the machine that built them has no CIFAR-10 (README, "The results on
# main"), so ex5's chain and the page, which shows every exercise, were not run there.
NOT_ON_MAIN = {
    "download@cifar10",
    "prepare@cifar10_scaled",
    "describe@cifar10",
    "fingerprint@ex5",
    "train@ex5",
    "evaluate@ex5",
    "explain@ex5",
    "report",
}


def test_the_results_main_carries_are_what_dvc_yaml_and_params_would_run_now():
    """main carries dvc.lock and the results Git keeps from a real-data build, for `dvc metrics diff main` and
    `dvc exp show` to compare against. Each locked stage's command and params must be today's: an edit of
    dvc.yaml or params.yaml without a new build would leave them silently stale. (`dvc status` on this checkout:
    outputs it lacks are not staleness, a changed command or param is.)"""
    import json

    import yaml

    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    stale = {}
    for stage, changes in json.loads(out.stdout).items():
        for change in changes:
            params = {}
            if isinstance(change, dict):
                params = {f: v for f, v in change.get("changed deps", {}).items() if isinstance(v, dict)}
            if stage in locked and (change == "changed command" or params):
                stale[stage] = change
    assert stale == {}, f"rebuild main's results (README, 'The results on main'): {stale}"
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "stage", "list", "--name-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(out.stdout.split()) - locked == NOT_ON_MAIN


def test_a_stage_of_one_exercise_lists_no_other_exercises_settings():
    """An edit of one exercise reruns only its own stages: no stage named for an exercise (`explain@ex2`,
    `replicate@ex1-3`) lists a params key holding another exercise's settings (`exercises`, `exercises.ex3...`), as
    DVC resolves dvc.yaml. (Stages of the whole study, `aggregate` and `judge`, read every exercise.)"""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        stages = {stage.addressing: stage for stage in repo.index.stages}
        exercises = set(repo.params.show()[""]["data"]["params.yaml"]["data"]["exercises"])
    foreign = {}
    for name, stage in stages.items():
        item = name.partition("@")[2]
        exercise = re.sub(r"-\d+$", "", item)
        if exercise not in exercises:
            continue
        keys = [key for dep in stage.deps if isinstance(dep, ParamsDependency) for key in dep.params]
        mine = f"exercises.{exercise}"
        wrong = [k for k in keys if k.startswith("exercises") and k != mine and not k.startswith(mine + ".")]
        if wrong:
            foreign[name] = wrong
    assert len([n for n in stages if n.startswith("explain@")]) == len(exercises)
    assert foreign == {}
