"""Verify on start, on a toy stage graph: a finished stage whose files no longer match its
manifest is redone with every stage downstream; old manifests (no ``files``) are still accepted;
a full disk ends the run and the rerun resumes."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from mmpc.apps.bench.disk import DiskFullError, is_disk_full
from mmpc.apps.bench.itemlog import ItemLog
from mmpc.apps.bench.manifest import file_stats, tree_hash
from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import FINGERPRINT, MANIFEST, PARTIAL, Stage, StageContext
from mmpc.apps.bench.verify import check_outputs, verify_run


def _graph(calls: list[str]) -> list[Stage]:
    """a → b → c, plus d reading a only: deterministic outputs, so a redo is byte-identical."""

    def a(ctx: StageContext) -> dict[str, int]:
        calls.append("a")
        (ctx.out / "sub").mkdir()
        (ctx.out / "sub" / "numbers.txt").write_text("".join(f"{i}\n" for i in range(50)))
        (ctx.out / "blob.bin").write_bytes(bytes(range(256)))
        return {"items": 50}

    def b(ctx: StageContext) -> dict[str, int]:
        calls.append("b")
        lines = (ctx.inputs["a"] / "sub" / "numbers.txt").read_text().split()
        (ctx.out / "sum.txt").write_text(str(sum(int(x) for x in lines)))
        return {"items": 1}

    def c(ctx: StageContext) -> dict[str, int]:
        calls.append("c")
        (ctx.out / "twice.txt").write_text(str(2 * int((ctx.inputs["b"] / "sum.txt").read_text())))
        return {"items": 1}

    def d(ctx: StageContext) -> dict[str, int]:
        calls.append("d")
        (ctx.out / "size.txt").write_text(str(len((ctx.inputs["a"] / "blob.bin").read_bytes())))
        return {"items": 1}

    return [
        Stage("a", a),
        Stage("b", b, inputs=("a",)),
        Stage("c", c, inputs=("b",)),
        Stage("d", d, inputs=("a",)),
    ]


def _run(run: Path, full: bool = False) -> tuple[list[str], dict[str, str], list[str]]:
    calls: list[str] = []
    lines: list[str] = []
    runner = StageRunner(run, show_progress=False, log=lines.append, full_verify=full)
    results = runner.run_all(_graph(calls))
    return calls, {r.name: r.status for r in results}, [x for x in lines if "[verify]" in x]


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    calls, _, _ = _run(run)
    assert calls == ["a", "b", "c", "d"]
    return run


def test_manifest_records_sizes_and_times(finished: Path) -> None:
    man = json.loads((finished / "a" / MANIFEST).read_text())
    assert man["files"] == file_stats(finished / "a")
    assert set(man["files"]) == {"sub/numbers.txt", "blob.bin"}
    assert check_outputs(finished / "a", man).ok


def test_undisturbed_run_is_skipped_without_a_line(finished: Path) -> None:
    calls, status, lines = _run(finished)
    assert calls == [] and set(status.values()) == {"skipped"} and lines == []
    assert verify_run(finished, _graph([])) == {}


def test_truncated_file_redoes_the_stage_and_everything_downstream(finished: Path) -> None:
    path = finished / "a" / "sub" / "numbers.txt"
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")  # the last record dropped
    assert list(verify_run(finished, _graph([]))) == ["a"]
    calls, status, lines = _run(finished)
    # a's redo is byte-identical, so b/c/d's fingerprints are too: they are redone all the same.
    assert calls == ["a", "b", "c", "d"]
    assert set(status.values()) == {"ran"}
    assert len(lines) == 1
    assert lines[0].startswith("[verify] a: damaged: sub/numbers.txt size 140 -> 137")
    assert "3 stage(s) downstream (b, d, c)" in lines[0]
    assert _run(finished)[0] == []


def test_damage_in_the_middle_spares_the_stages_that_do_not_read_it(finished: Path) -> None:
    (finished / "b" / "sum.txt").write_text("0")
    calls, status, lines = _run(finished)
    assert calls == ["b", "c"] and len(lines) == 1
    assert status == {"a": "skipped", "b": "ran", "c": "ran", "d": "skipped"}
    assert (finished / "c" / "twice.txt").read_text() == str(2 * sum(range(50)))


def test_flipped_byte_with_its_time_restored_needs_the_full_hash(finished: Path) -> None:
    blob = finished / "a" / "blob.bin"
    st = blob.stat()
    data = bytearray(blob.read_bytes())
    data[7] ^= 0xFF
    blob.write_bytes(bytes(data))
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _run(finished)[0] == []  # the cheap check cannot see it
    assert list(verify_run(finished, _graph([]), full=True)) == ["a"]
    calls, _, lines = _run(finished, full=True)
    assert calls == ["a", "b", "c", "d"]
    assert "contents changed" in lines[0]


def test_touched_file_is_still_trusted_and_its_time_recorded(finished: Path) -> None:
    blob = finished / "a" / "blob.bin"
    os.utime(blob, ns=(1, 1))
    calls, _, lines = _run(finished)
    assert calls == [] and lines == []
    assert json.loads((finished / "a" / MANIFEST).read_text())["files"]["blob.bin"][1] == 1


def test_old_manifest_without_file_stats_is_checked_by_hash(finished: Path) -> None:
    for name in "abcd":
        path = finished / name / MANIFEST
        man = json.loads(path.read_text())
        del man["files"]
        path.write_text(json.dumps(man, indent=2, sort_keys=True))
    assert _run(finished)[0] == []
    assert "files" in json.loads((finished / "a" / MANIFEST).read_text())  # upgraded
    for name in "abcd":  # strip again, then damage: the hash finds it
        path = finished / name / MANIFEST
        man = json.loads(path.read_text())
        del man["files"]
        path.write_text(json.dumps(man, indent=2, sort_keys=True))
    (finished / "b" / "sum.txt").write_text("1")
    calls, _, lines = _run(finished)
    assert calls == ["b", "c"] and "[verify] b: damaged" in lines[0]


def test_deleted_manifest_or_removed_folder_redoes_the_stage_and_downstream(
    finished: Path,
) -> None:
    (finished / "b" / MANIFEST).unlink()
    assert verify_run(finished, _graph([])) == {"b": "manifest.json is missing"}
    calls, _, lines = _run(finished)
    assert calls == ["b", "c"] and "manifest.json is missing" in lines[0]
    shutil.rmtree(finished / "a")
    assert verify_run(finished, _graph([])) == {
        "a": "its folder is missing but b was computed from it"
    }
    calls, _, lines = _run(finished)
    assert calls == ["a", "b", "c", "d"] and len(lines) == 1


def test_downstream_stays_distrusted_if_the_run_stops_after_the_redo(finished: Path) -> None:
    (finished / "a" / "blob.bin").write_bytes(b"x")
    runner = StageRunner(finished, show_progress=False, log=lambda _: None)
    stages = _graph([])
    runner.set_graph(stages)
    assert runner.run(stages[0]).status == "ran"  # a redone, then the run "dies"
    calls, status, _ = _run(finished)
    assert calls == ["b", "c", "d"] and status["a"] == "skipped"


def test_stale_partial_of_other_settings_is_removed_with_a_line(finished: Path) -> None:
    stale = finished / f"b{PARTIAL}"
    stale.mkdir()
    (stale / FINGERPRINT).write_text("0" * 64 + "\n")
    (stale / "junk.txt").write_text("half")
    lines: list[str] = []
    calls: list[str] = []
    StageRunner(finished, show_progress=False, log=lines.append).run_all(_graph(calls))
    assert calls == [] and not stale.exists()
    assert any(line.startswith(f"[stage] b: removed b{PARTIAL}") for line in lines)


def test_partial_with_a_manifest_whose_files_changed_is_done_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(run)
    shutil.rmtree(run / "b")
    # as if killed between writing b's manifest and the rename, then damaged
    _run_b_to_manifest = StageRunner(run, show_progress=False, log=lambda _: None)
    stages = _graph([])
    ctx = _run_b_to_manifest.prepare(stages[1])
    assert isinstance(ctx, StageContext)
    (ctx.out / "sum.txt").write_text("7")
    from mmpc.apps.bench.manifest import write_manifest

    write_manifest(
        ctx.out,
        name="b",
        fingerprint=_run_b_to_manifest.fingerprint(stages[1]),
        config={},
        inputs=("a",),
        counts={"items": 1},
        duration_s=0.0,
        notes={},
    )
    (ctx.out / "sum.txt").write_text("77")
    calls, _, _ = _run(run)
    assert "b" in calls and (run / "b" / "sum.txt").read_text() == str(sum(range(50)))


def test_full_disk_in_a_stage_ends_the_run_and_the_rerun_resumes(tmp_path: Path) -> None:
    budget = {"left": 3}

    def items(ctx: StageContext) -> dict[str, int]:
        log = ItemLog(ctx.out / "items.log")
        for i in range(6):
            if str(i) in log.done():
                continue
            if budget["left"] == 0:
                with (ctx.out / "items.log").open("a") as fh:  # a torn line, as ENOSPC leaves
                    fh.write('{"item_id": "')
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(ctx.out))
            budget["left"] -= 1
            log.append({"item_id": str(i), "value": i * i})
        return {"items": log.finalize(ctx.out / "items.jsonl")}

    stage = Stage("items", items)
    with pytest.raises(DiskFullError, match=r"no space left on device while stage items ran"):
        StageRunner(tmp_path, show_progress=False, log=lambda _: None).run(stage)
    assert not (tmp_path / "items").exists()
    assert not (tmp_path / f"items{PARTIAL}" / "error.txt").exists()
    budget["left"] = 100
    assert StageRunner(tmp_path, show_progress=False, log=lambda _: None).run(stage).status == "ran"
    rows = [json.loads(x) for x in (tmp_path / "items" / "items.jsonl").read_text().splitlines()]
    assert [r["item_id"] for r in rows] == [str(i) for i in range(6)]
    assert tree_hash(tmp_path / "items")


def test_disk_full_is_recognised_through_wrapping_errors() -> None:
    try:
        try:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        except OSError as inner:
            raise RuntimeError("writing the checkpoint failed") from inner
    except RuntimeError as err:
        assert is_disk_full(err)
    assert is_disk_full(RuntimeError("[enforce fail] No space left on device"))
    assert not is_disk_full(OSError(errno.EACCES, "denied"))
