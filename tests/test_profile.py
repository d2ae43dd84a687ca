"""denselab.tools.profile: a profile of profiles.yaml written into params.yaml, every other line kept."""

from __future__ import annotations

import pytest

from denselab.core.cli import StageError
from denselab.study.claim_tests import load_with_claims
from denselab.tools import profile as P
from tests.conftest import ROOT
from tests.fixtures import copy_params


def full_study():
    return P._round_trip().load((ROOT / "profiles.yaml").read_text())["profiles"]["full_study"]


def test_the_full_study_adds_the_control_after_the_last_exercise_and_its_runs_to_the_study():
    before = (ROOT / "params.yaml").read_text()
    after, changes = P.applied(before, full_study())
    assert changes == ["exercises.ex5_deeper: added", "study.exercises: added ex5, ex5_deeper"]
    old, new = before.splitlines(), after.splitlines()
    # The control's 16 lines right after the last exercise, above the comment on the study; every other line as it
    # was, but the study's list.
    start = new.index("  ex5_deeper:")
    block, rest = new[start : start + 16], new[:start] + new[start + 16 :]
    assert block[-1] == "    precision: float32" and "      - {units: 512, activation: relu}" in block
    assert new[start - 1] == "    precision: float32" and new[start + 16] == ""
    assert new[start + 17].startswith("# The seeds study")
    assert len(rest) == len(old)
    changed = [(a, b) for a, b in zip(old, rest, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith("  exercises: [baseline")
    assert changed[0][1] == changed[0][0][:-1] + ", ex5, ex5_deeper]"
    # Applied twice, nothing changes.
    assert P.applied(after, full_study()) == (after, [])


def test_an_exercise_of_the_same_name_that_differs_is_not_overwritten():
    before = (ROOT / "params.yaml").read_text()
    after, _ = P.applied(before, full_study())
    changed = after.replace("  ex5_deeper:\n    control: true\n", "  ex5_deeper:\n    control: true\n    xla: true\n")
    with pytest.raises(StageError, match=r"exercises.ex5_deeper exists and differs from the profile's"):
        P.applied(changed, full_study())


def test_applying_writes_a_valid_params_yaml_and_a_profile_that_would_not_be_valid_writes_nothing(tmp_path):
    copy_params(tmp_path)
    changes = P.apply_profile(tmp_path, "full_study")
    assert changes[0] == "exercises.ex5_deeper: added"
    params = load_with_claims(tmp_path / "params.yaml")
    assert params.study.exercises[-2:] == ("ex5", "ex5_deeper")
    assert [layer.units for layer in params.exercises["ex5_deeper"].layers] == [3072, 512, 512, 512, 10]
    assert P.apply_profile(tmp_path, "full_study") == []

    copy_params(tmp_path)
    before = (tmp_path / "params.yaml").read_bytes()
    profiles = (tmp_path / "profiles.yaml").read_text()
    # Valid on its own, not once written in: the lab's seed is never a study seed.
    (tmp_path / "profiles.yaml").write_text(profiles.replace("      exercises: [ex5, ex5_deeper]", "      seeds: [42]"))
    with pytest.raises(StageError, match=r"the profile full_study would make params.yaml invalid:\n.*study.seeds"):
        P.apply_profile(tmp_path, "full_study")
    assert (tmp_path / "params.yaml").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    with pytest.raises(StageError, match=r"no profile 'full_studdy' \(profiles: full_study\)"):
        P.apply_profile(tmp_path, "full_studdy")


def test_what_a_profile_names_is_checked_when_it_is_applied_not_before(tmp_path):
    """A project may drop what a profile trains on (CIFAR-10, say): its params stay valid; the profile is refused
    only when applied, naming the key."""
    copy_params(tmp_path)
    profiles = (tmp_path / "profiles.yaml").read_text()
    (tmp_path / "profiles.yaml").write_text(profiles.replace("inputs: cifar10_scaled", "inputs: cifar100_scaled"))
    assert load_with_claims(tmp_path / "params.yaml").profiles["full_study"].exercises["ex5_deeper"]
    with pytest.raises(StageError, match=r"exercises.ex5_deeper.inputs: unknown inputs .* 'cifar100_scaled'"):
        P.apply_profile(tmp_path, "full_study")


def test_without_ruamels_comment_records_the_profile_still_applies():
    """The comment that follows the last exercise moves below the added one through ruamel.yaml's `.ca`; mappings
    without it (another ruamel.yaml) leave the comment where it is."""
    old, new = {"a": {"x": 1}}, {"b": {"y": 2}}
    P._move_comment_after(P._last_key(old), P._last_key(new))
    assert (old, new) == ({"a": {"x": 1}}, {"b": {"y": 2}})
    assert P._last_key({"a": {"x": 1, "z": {"w": 3}}}) == ({"w": 3}, "w")


def test_the_command_lists_the_profiles(tmp_path, monkeypatch, capsys):
    copy_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    P.main([])
    assert capsys.readouterr().out == "full_study\n"
    P.main(["full_study"])
    assert "params.yaml: exercises.ex5_deeper: added" in capsys.readouterr().err
