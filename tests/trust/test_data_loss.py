"""No user file is ever lost: each data-loss case of issue 9, through the real CLI and the real writers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator.cli import main
from generator.errors import GeneratorError
from generator.fileio import staged_dir, sweep_leftovers
from generator.measure.report import write_report


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _with_notes(folder: Path) -> dict[str, bytes]:
    (folder / "photos" / "2024").mkdir(parents=True)
    (folder / "photos" / "2024" / "a.txt").write_text("holiday")
    (folder / "notes.md").write_text("my notes")
    return _tree(folder)


def test_run_refuses_a_report_folder_with_user_files_before_any_work(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tiny_spec.parent / "mine"
    before = _with_notes(notes)
    assert main(["run", str(tiny_spec), "--report", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "which trgen did not write" in err and "notes.md" in err
    assert _tree(notes) == before
    assert not (tiny_spec.parent / "build").exists() and not (tiny_spec.parent / "repo").exists()


def test_bench_refuses_an_out_folder_with_user_files(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tiny_spec.parent / "mine"
    before = _with_notes(notes)
    assert main(["bench", str(tiny_spec), "--out", str(notes)]) == 2
    assert "which trgen did not write" in capsys.readouterr().err
    assert _tree(notes) == before and not (tiny_spec.parent / "repo").exists()
    assert main(["bench", "--url", "127.0.0.1:1", "--model-name", "m", "--out", str(notes)]) == 2
    assert _tree(notes) == before


def test_report_writer_replaces_only_its_own_folder(tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(out, bench=[], comparison=None)
    assert sorted(p.name for p in out.iterdir()) == [".trgen-report", "report.json", "report.md"]
    write_report(out, bench=[], comparison=None)  # its own folder: replaced
    (out / "keep.txt").write_text("mine")
    with pytest.raises(GeneratorError, match="keep.txt, which trgen did not write"):
        write_report(out, bench=[], comparison=None)
    assert (out / "keep.txt").read_text() == "mine"


def test_render_never_deletes_a_precious_folder(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`repository: precious` holding photos/2024/a.txt (a numeric folder fooled the old guard)."""
    precious = tiny_spec.parent / "precious"
    (precious / "photos" / "2024").mkdir(parents=True)
    (precious / "photos" / "2024" / "a.txt").write_text("holiday")
    tiny_spec.write_text(tiny_spec.read_text().replace("repository: repo", "repository: precious"))
    assert main(["render", str(tiny_spec)]) == 2
    err = capsys.readouterr().err
    assert "precious: holds photos, which trgen did not write" in err
    assert (precious / "photos" / "2024" / "a.txt").read_text() == "holiday"
    assert not (tiny_spec.parent / "build").exists()  # refused before any work
    assert main(["check", str(tiny_spec)]) == 2  # check says the same


def test_a_file_added_to_a_rendered_model_folder_is_not_deleted(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(tiny_spec)]) == 0
    repo = tiny_spec.parent / "repo"
    assert (repo / ".trgen-repository").is_file()
    (repo / "tiny_fp32" / "1" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["render", str(tiny_spec)]) == 2
    assert "holds tiny_fp32, which trgen did not write" in capsys.readouterr().err
    assert (repo / "tiny_fp32" / "1" / "notes.txt").read_text() == "mine"


def test_swap_is_one_exchange_and_an_interrupted_two_rename_swap_is_recovered(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    with staged_dir(target, marker=".m") as new:
        (new / "a").write_text("old")
    inode = target.stat().st_ino
    with staged_dir(target, marker=".m") as new:
        (new / "a").write_text("new")
    assert (target / "a").read_text() == "new" and target.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # the old folder is gone too
    # a kill between the two renames of the fallback swap: only `.repo.XXXX.old` is left
    os.replace(target, tmp_path / ".repo.1a2b3c4d.old")
    sweep_leftovers(tmp_path, "repo")
    assert (target / "a").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_leftovers_of_killed_runs_are_swept_by_the_next_command(tiny_spec: Path) -> None:
    assert main(["calibrate", str(tiny_spec)]) == 0
    variant = tiny_spec.parent / "build" / "tiny_int8"
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (variant / f".calibration.{dead}-k1ll3d.tmp").mkdir()
    (variant / f".calibration.{dead}-k1ll3d.tmp" / "half.json").write_text("{")
    (variant / ".calibration.abc123xy.tmp").mkdir()  # the naming of older trgen versions
    (variant / f".manifest.json.{dead}-x9.tmp").write_text("half")
    (tiny_spec.parent / f".repo.{dead}-zz.tmp").mkdir()
    live = variant / f".calibration.{os.getppid()}-alive.tmp"  # a live process's: left alone
    live.mkdir()
    assert main(["calibrate", str(tiny_spec)]) == 0  # up to date: skipped, but the leftovers go
    left = sorted(p.name for p in tiny_spec.parent.rglob(".*") if p.name.endswith((".tmp", ".old")))
    assert left == [live.name]
