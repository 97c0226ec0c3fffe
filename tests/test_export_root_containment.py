"""One containment check (``inside_export_roots``) for writing (output paths) and for deleting
(retention, schedule run clean-up): ``..`` and symlinks are resolved before it answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from exports.output_roots import inside_export_roots


@pytest.fixture
def root(tmp_path, settings) -> Path:
    root, nested = tmp_path / "root", tmp_path / "root" / "nested-root"
    nested.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    settings.HYPERSDK_EXPORT_ROOTS = [str(root), str(nested)]
    return root


def test_a_directory_inside_a_root_is_inside(root):
    assert inside_export_roots(root / "vm-1") and inside_export_roots(root / "vm-1", strictly=True)


def test_dot_dot_out_of_the_root_is_outside(root):
    assert not inside_export_roots(root / ".." / "elsewhere")
    assert not inside_export_roots(f"{root}/vm-1/../../elsewhere", strictly=True)


def test_a_symlink_out_of_the_root_is_outside(root, tmp_path):
    (root / "escape").symlink_to(tmp_path / "elsewhere")
    assert not inside_export_roots(root / "escape") and not inside_export_roots(root / "escape" / "x")


def test_a_sibling_sharing_the_roots_name_prefix_is_outside(root, tmp_path):
    assert not inside_export_roots(tmp_path / "root-other" / "x")


def test_a_root_itself_may_hold_output_but_is_never_deleted(root):
    assert inside_export_roots(root) and not inside_export_roots(root, strictly=True)


def test_a_root_inside_another_is_never_deleted_but_its_runs_are(root):
    (root / "nested-root" / "vm-2").mkdir()
    assert inside_export_roots(root / "nested-root" / "vm-2", strictly=True)
    assert not inside_export_roots(root / "nested-root", strictly=True)
