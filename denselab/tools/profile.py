"""Apply a profile of profiles.yaml: write its exercises and its study's additions into params.yaml.

    python -m denselab.tools.profile full_study     # then `dvc repro`, or the study's runs on Slurm: python -m denselab.tools.slurm
    python -m denselab.tools.profile                # lists the profiles

A profile is an edit of params.yaml like any other, made by a command because it is long: the new exercises are
written as profiles.yaml writes them, the study's exercises and seeds appended, every comment and every other line
of params.yaml kept as it was (a round trip through ruamel.yaml, the YAML library DVC itself edits params.yaml
with). The result is validated before it replaces params.yaml: nothing is written when it would not be valid.
`git diff params.yaml` shows the edit, `git checkout params.yaml` takes it back. Applying it twice changes nothing.
No stage imports this module: it is a command for people.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

from denselab.core.cli import ParamsError, StageError, argument_parser, stage_main
from denselab.core.config import PARAMS_FILE, load_params
from denselab.core.files import write_text

PROFILES_FILE = "profiles.yaml"


def _round_trip() -> Any:
    """A ruamel.yaml reader and writer that gives params.yaml back byte for byte (its indentation, no wrapping)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _last_key(node: Any) -> tuple[Any, Any]:
    """The mapping and key of the last value written under `node` (a mapping), however deep: ruamel.yaml keeps the
    comment lines that follow a block there."""
    mapping, key = node, list(node)[-1]
    while isinstance(mapping[key], dict) and mapping[key]:
        mapping = mapping[key]
        key = list(mapping)[-1]
    return mapping, key


def _move_comment_after(old: tuple[Any, Any], new: tuple[Any, Any]) -> None:
    """Move the comment lines that followed the old last value to after the new one, so that they stay above the
    next section (params.yaml's comment on the study) rather than above the exercise added."""
    (old_map, old_key), (new_map, new_key) = old, new
    # ruamel.yaml's comment attachments (`.ca.items`, 0.15 to 0.19): where a version lacks them the comment stays
    # where it was, above the added exercise, and the file is as valid.
    old_items = getattr(getattr(old_map, "ca", None), "items", None)
    new_items = getattr(getattr(new_map, "ca", None), "items", None)
    if isinstance(old_items, dict) and isinstance(new_items, dict) and old_key in old_items:
        new_items[new_key] = old_items.pop(old_key)


def applied(params_text: str, profile: Any) -> tuple[str, list[str]]:
    """params.yaml's text with `profile` (its mapping, as ruamel.yaml read it from profiles.yaml) written in, and
    what changed, a line each (empty: the profile was applied already)."""
    yaml = _round_trip()
    params = yaml.load(params_text)
    changes = []
    for name, exercise in (profile.get("exercises") or {}).items():
        if name not in params["exercises"]:
            last = _last_key(params["exercises"])
            params["exercises"][name] = exercise
            _move_comment_after(last, _last_key(params["exercises"]))
            changes.append(f"exercises.{name}: added")
        elif params["exercises"][name] != exercise:
            raise StageError(
                f"params.yaml: exercises.{name} exists and differs from the profile's; rename or remove it first"
            )
    for key, added in (profile.get("study") or {}).items():
        listed = params["study"][key]
        new = [item for item in added if item not in listed]
        listed.extend(new)
        if new:
            changes.append(f"study.{key}: added {', '.join(str(item) for item in new)}")
    out = io.StringIO()
    yaml.dump(params, out)
    return out.getvalue(), changes


def apply_profile(root: Path, name: str) -> list[str]:
    """Write the profile `name` into the project's params.yaml once the result is valid; return what changed."""
    from denselab.study.claim_tests import load_with_claims

    profiles = load_params(root / PARAMS_FILE).profiles  # validates profiles.yaml (and what it names)
    if name not in profiles:
        known = ", ".join(profiles) or "none"
        raise StageError(f"{PROFILES_FILE}: no profile {name!r} (profiles: {known})")
    yaml = _round_trip()
    profile = yaml.load((root / PROFILES_FILE).read_text(encoding="utf-8"))["profiles"][name]
    params_file = root / PARAMS_FILE
    text, changes = applied(params_file.read_text(encoding="utf-8"), profile)
    if not changes:
        return []
    # Checked beside the real file (so with the same claims.yaml and profiles.yaml), then moved over it.
    candidate = params_file.with_name(f".{PARAMS_FILE.name}.{name}")
    write_text(candidate, text)
    try:
        load_with_claims(candidate)
    except ParamsError as exc:
        candidate.unlink()
        raise StageError(f"the profile {name} would make params.yaml invalid:\n{exc}") from None
    os.replace(candidate, params_file)
    return changes


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m denselab.tools.profile [NAME]`."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("name", nargs="?", help="the profile to apply (none: list them)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if not (root / PROFILES_FILE).is_file():
        raise StageError(f"no {PROFILES_FILE} here: run this in the project's folder")
    if args.name is None:
        for name in load_params(root / PARAMS_FILE).profiles:
            print(name)
        return
    changes = apply_profile(root, args.name)
    if not changes:
        print(f"params.yaml: the profile {args.name} is applied already", file=sys.stderr)
        return
    for line in changes:
        print(f"params.yaml: {line}", file=sys.stderr)
    print(
        "next: `dvc repro` (or the study's runs on a Slurm cluster: `python -m denselab.tools.slurm`); "
        "`git checkout params.yaml` takes the profile out",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
