"""The source files a stage runs: its module and every DenseLab module it imports, directly or not, found by
reading the imports (those inside functions too), and the data files that code reads as it runs (the message
catalogs, the report's templates). The `sources` stage writes them down with their hashes, one file per stage,
and each stage depends on its file: editing a module, a template or a catalog reruns exactly the stages that
run it."""

from __future__ import annotations

import ast
from pathlib import Path

from denselab.core.files import sha256_file

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stages", "denselab")
# What a module reads as it runs besides code (i18n.CATALOGS, page.TEMPLATES; not imported from there, so that
# the stages that import this module do not run i18n): a stage that runs the module runs these files too. A
# folder here costs its stages nothing at a no-op `dvc repro`, where a folder dependency per stage would.
DATA = {"denselab/core/i18n.py": "denselab/core/messages", "denselab/report/page.py": "denselab/report/templates"}


def local_imports(source: str, root: Path = ROOT) -> set[str]:
    """The DenseLab modules (`denselab.training.models`, `stages.train`, or a package itself) a module's source
    imports; of `from denselab.training import models`, the package and each name that is a module of it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
            module = str(node.module)
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names if module_file(f"{module}.{a.name}", root).is_file()}
    return found


def module_file(module: str, root: Path = ROOT) -> Path:
    """The file of a module of the project (a package's `__init__.py`)."""
    path = root.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def closure(module: str, root: Path = ROOT) -> list[str]:
    """Every file that running `module` executes of the project, its packages' `__init__.py` included, as sorted
    paths relative to `root`."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b runs a/__init__.py, then a/b.py
            current = ".".join(parts[:i])
            if current not in seen:
                seen.add(current)
                todo.extend(local_imports(module_file(current, root).read_text(encoding="utf-8"), root))
    return sorted(module_file(name, root).relative_to(root).as_posix() for name in seen)


def data_files(code: list[str], root: Path = ROOT) -> list[str]:
    """The data files (`DATA`) that the code files `code` read, as sorted paths relative to `root`."""
    found: set[str] = set()
    for path in code:
        if path in DATA:
            folder = root / DATA[path]
            found |= {f.relative_to(root).as_posix() for f in folder.rglob("*") if f.is_file() and f.suffix != ".pyc"}
    return sorted(found)


def hashes(paths: list[str], root: Path = ROOT) -> dict[str, str]:
    """The sha256 of each file (paths relative to `root`)."""
    return {path: sha256_file(root / path) for path in paths}


def stage_names(root: Path = ROOT) -> list[str]:
    """Every stage module of `stages/`."""
    return sorted(p.stem for p in (root / "stages").glob("*.py") if p.stem != "__init__")
