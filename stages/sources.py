"""Stage `sources`: the source files each stage runs, with their hashes, one small file per stage.

    python -m stages.sources --out data/sources

It depends on the folders `stages/` and `denselab/` as wholes, so it reruns on any edit there, in a fraction
of a second. Each other stage depends on its own file (`layout.sources_file`): a file's bytes change exactly
when a module its stage imports (directly or not, see `denselab.core.sources`) changes, so editing a module reruns
exactly the stages that run it, and dvc.yaml lists one code dependency per stage instead of every module.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from denselab.core.cli import argument_parser, stage_main
from denselab.core.files import replaced_folder
from denselab.core.layout import sources_file
from denselab.core.sources import ROOT, closure, data_files, hashes, stage_names


def sources(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """Per stage module (but this one), the files it runs (code and the data that code reads) and their sha256."""
    found = {}
    for name in stage_names(root):
        if name != "sources":
            code = closure(f"stages.{name}", root)
            found[name] = hashes(code + data_files(code, root), root)
    return found


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m stages.sources --out DIR`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("--out", type=Path, required=True, help="the folder of one file per stage")
    args = parser.parse_args(argv)
    found = sources()
    with replaced_folder(args.out) as staging:
        for name, files in found.items():
            (staging / sources_file(name)).write_text(json.dumps(files, indent=1) + "\n", encoding="utf-8")
    print(f"sources: {len(found)} stages, {len(set().union(*found.values()))} files", file=sys.stderr)


if __name__ == "__main__":
    main()
