"""Undoing a dead run's record: only our own record, never a live run's, never the directory the next run holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from exports.pipeline.errors import OutputError
from exports.pipeline.output import OutputDir, discard_run

NOBODY = 65534


def killed_overwrite_run(tmp_path: Path) -> Path:
    """``tmp_path/app01`` after an -overwrite run over a completed export was killed mid-download:
    the previous disk set aside in its record directory, a .part beside, no process holding it."""
    output = tmp_path / "app01"
    output.mkdir()
    (output / "app01.ovf").write_text("the previous export")
    (output / "app01-disk1.vmdk").write_text("its disk")
    killed = OutputDir(output, "killed")
    killed.prepare(completed_marker_names=["app01.ovf"], overwrite=True)
    killed.track("app01-disk1.vmdk")  # the previous disk moves aside
    (output / "app01-disk1.vmdk.part").write_bytes(b"half")
    killed._close()  # kill -9: the lock goes with the process, the record stays
    return output


def visible_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_a_record_another_user_planted_is_never_undone(tmp_path):
    # Anyone who can create a directory in the output directory (a shared, sticky /srv/exports,
    # a group-writable share) plants a "dead run" whose record names someone else's files:
    # the next hyperexport (or daemon job) into that directory deletes them for him.
    output = tmp_path / "share"
    output.mkdir()
    (output / "notes.txt").write_text("the owner's file, made by no run")
    (output / "keep-dir").mkdir()
    (output / "keep-dir" / "data").write_text("a tree, made by no run")
    planted = output / ".hypersdk-run-evil"
    planted.mkdir()
    (planted / "record.json").write_text(
        json.dumps(
            {
                "run_id": "evil",
                "output": str(output),
                "created_dirs": [],
                "created": ["notes.txt", "keep-dir"],
                "stashed": [],
            }
        )
    )

    for path in (planted, planted / "record.json"):
        os.chown(path, NOBODY, NOBODY)  # another user's: runs make theirs as the user they run as

    run = OutputDir(output, "victim")
    run.prepare(completed_marker_names=[], overwrite=False)
    run.discard()

    assert (output / "notes.txt").exists(), "a planted record made the run delete a file no run created"
    assert (output / "keep-dir" / "data").exists(), "a planted record made the run rmtree a directory"


def test_the_reaper_leaves_a_run_whose_lock_is_held(tmp_path):
    # reap_lost_jobs -> remove_partial_output -> discard_run: heartbeat-based only, it never
    # asks the lock the new recovery relies on. A worker whose heartbeat stalled but whose run
    # is alive (lock held) loses its files and gets the previous export moved back under it.
    output = tmp_path / "app01"
    output.mkdir()
    (output / "app01.ovf").write_text("previous export")
    live = OutputDir(output, "job-live")
    live.prepare(completed_marker_names=["app01.ovf"], overwrite=True)
    live.track("app01-disk1.vmdk")
    (output / "app01-disk1.vmdk").write_bytes(b"being written by a live run")

    assert discard_run(output, "job-live") is False  # alive: its lock is held
    assert (output / "app01-disk1.vmdk").read_bytes() == b"being written by a live run"
    live.discard()


def test_a_run_racing_a_dead_runs_recovery_still_refuses_to_replace_a_completed_export(tmp_path, monkeypatch):
    # Interleaving of two runs started together without -overwrite after a killed -overwrite run:
    #   C: _recover_dead_runs locks the dead run's directory and starts undoing it.
    #   D: _recover_dead_runs sees that directory locked ("live") and skips it; its `existing`
    #      check runs while the previous export still sits in the dead run's previous/: none.
    #   C: finishes the undo (the previous export is back, the dead run's directory gone) and
    #      refuses ("already holds a completed export"): it never makes a run directory.
    #   D: mkdir, flock, _refuse_live_runs finds no live run: D goes on without -overwrite and
    #      its track() moves the completed export aside.
    import fcntl

    from exports.pipeline import output as output_module

    output = killed_overwrite_run(tmp_path)

    c_fd = os.open(output / ".hypersdk-run-killed", os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(c_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # C is undoing it right now

    real_refuse = OutputDir._refuse_live_runs

    def c_finishes_then_refuse(self):
        discard_run(output, "killed")  # C's undo completes
        os.close(c_fd)
        return real_refuse(self)

    monkeypatch.setattr(output_module.OutputDir, "_refuse_live_runs", c_finishes_then_refuse)
    d = OutputDir(output, "d")
    try:
        d.prepare(completed_marker_names=["app01.ovf"], overwrite=False)
        refused = False
    except output_module.OutputError:
        refused = True
    if not refused:
        d.track("app01-disk1.vmdk")
    assert refused, "run D went on without -overwrite over a completed export"
    assert (output / "app01-disk1.vmdk").read_text() == "its disk"


def test_a_fifo_planted_as_a_record_does_not_hang_the_next_run(tmp_path):
    # record.json as a FIFO: entry_exists says yes, the lock is free, discard_run opens it
    # O_RDONLY (blocking, no writer): prepare() never returns. Any run (a daemon job holds its
    # worker slot) into a directory someone could create a subdirectory in hangs for good.
    import subprocess
    import sys
    import textwrap

    output = tmp_path / "share"
    output.mkdir()
    planted = output / ".hypersdk-run-fifo"
    planted.mkdir()
    os.mkfifo(planted / "record.json")
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from exports.pipeline.output import OutputDir
        run = OutputDir(Path({str(output)!r}), "victim")
        run.prepare(completed_marker_names=[], overwrite=False)
        run.discard()
        """
    )
    try:
        subprocess.run(
            [sys.executable, "-c", code], timeout=10, check=False, cwd=Path(__file__).parent.parent
        )
        hung = False
    except subprocess.TimeoutExpired:
        hung = True
    assert not hung, "OutputDir.prepare blocked on a FIFO planted as a dead run's record.json"


def test_after_a_killed_run_that_made_the_directory_the_next_run_still_works(tmp_path):
    # First export into a new directory, killed -9: its record lists the directory in
    # created_dirs. The next run opens the directory, then _recover_dead_runs undoes the dead
    # run — and, the directory now empty, rmdirs the very directory the next run holds open.
    # Real CLI: `hyperexport -output NEW -convert` killed, then `hyperexport -output NEW
    # -overwrite` -> "error: cannot write NEW: No such file or directory", NEW gone.
    output = tmp_path / "new" / "app01"
    killed = OutputDir(output, "killed")
    killed.prepare(completed_marker_names=["app01.ovf"], overwrite=False)
    killed.track("app01-disk1.vmdk")
    (output / "app01-disk1.vmdk.part").write_bytes(b"half")
    killed._close()  # kill -9

    after = OutputDir(output, "after")
    after.prepare(completed_marker_names=["app01.ovf"], overwrite=True)
    try:
        assert output.is_dir(), "the recovery removed the directory this run has open"
        after.track("app01.ovf")
        (output / "app01.ovf").write_text("new")  # ENOENT when the directory is gone
    finally:
        after.discard()


def test_the_next_run_undoes_a_killed_direct_runs_record_and_brings_the_previous_export_back(tmp_path):
    # A direct hyperexport killed outright has no reaper: the next run in its directory is it.
    output = killed_overwrite_run(tmp_path)
    assert visible_files(output) == ["app01-disk1.vmdk.part"]
    starting = output / ".hypersdk-run-starting"
    starting.mkdir()  # a run that has not written its record yet is not dead: left alone

    after = OutputDir(output, "after")
    with pytest.raises(OutputError, match="already holds a completed export"):
        after.prepare(completed_marker_names=["app01.ovf"], overwrite=False)

    assert visible_files(output) == ["app01-disk1.vmdk", "app01.ovf"]
    assert (output / "app01.ovf").read_text() == "the previous export"
    assert (output / "app01-disk1.vmdk").read_text() == "its disk"
    assert sorted(p.name for p in output.iterdir() if p.name.startswith(".")) == [starting.name]


def test_a_live_runs_record_is_never_undone_by_another_run(tmp_path):
    output = tmp_path / "app01"
    live = OutputDir(output, "live")
    live.prepare(completed_marker_names=[], overwrite=False)
    live.track("app01-disk1.vmdk")
    (output / "app01-disk1.vmdk.part").write_bytes(b"being written")

    with pytest.raises(OutputError, match="in use by another export"):
        OutputDir(output, "other").prepare(completed_marker_names=[], overwrite=False)

    assert (output / "app01-disk1.vmdk.part").read_bytes() == b"being written"
    live.discard()
