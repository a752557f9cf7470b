"""The shared crash-safe writers and lazy exports of ``mmpc.metrics``."""

from __future__ import annotations

import hashlib
import json
import types

import numpy as np
import pytest

from mmpc.metrics.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
)
from mmpc.metrics.lazy import lazy_exports


def test_atomic_writers_replace_and_leave_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second ±")
    assert target.read_text(encoding="utf-8") == "second ±"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    atomic_write_json(tmp_path / "j.json", {"b": 1, "a": [1, 2]}, sort_keys=True)
    text = (tmp_path / "j.json").read_text()
    assert text == json.dumps({"b": 1, "a": [1, 2]}, indent=2, sort_keys=True) + "\n"
    assert sorted(p.name for p in tmp_path.rglob(".*.tmp")) == []


def test_atomic_path_keeps_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "x.npy"
    np.save(target, np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        np.save(tmp, np.arange(5))
        raise RuntimeError("crash mid-write")
    assert np.load(target).tolist() == [0, 1, 2]
    assert list(tmp_path.glob(".*.tmp")) == []
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.arange(5))
    assert np.load(target).tolist() == [0, 1, 2, 3, 4]


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f", chunk_size=4096) == hashlib.sha256(data).hexdigest()


def test_lazy_exports_resolve_on_use_and_reject_unknown_names():
    all_, getattr_, dir_ = lazy_exports("pkg", {"mean_std": "mmpc.metrics.aggregate"})
    assert all_ == ["mean_std"] and dir_() == ["mean_std"]
    assert isinstance(getattr_("mean_std"), types.FunctionType)
    with pytest.raises(AttributeError, match="'pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_atomic_dir_replaces_or_keeps_the_existing_folder(tmp_path):
    from mmpc.metrics.files import atomic_dir

    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    with atomic_dir(target) as tmp:  # replace=True: the new folder wins, the old one is gone
        (tmp / "b.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    with atomic_dir(target, replace=False) as tmp:  # an existing folder wins (a filled cache)
        (tmp / "c.txt").write_text("late")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    try:
        with atomic_dir(target) as tmp:
            (tmp / "d.txt").write_text("half")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no temp or .old left
