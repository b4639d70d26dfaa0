"""The run store: roundtrips, atomic and concurrent writes, crashes, bad folders, bad files."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import textwrap
import typing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

import idbench.data
import idbench.store as store_module
from idbench.errors import IdbenchError
from idbench.schema import MeasurementRow, RunRow
from idbench.atomic import temp_path
from idbench.frames import polars_schema
from idbench.provenance import device_name, git_rev, now_iso, versions
from idbench.rows import run_row
from idbench.store import RunStore
from idbench.train import RunSpec, run

MODEL = "fc[depth=1,width=16]"
D_FC = 64 * 16 + 16 + 16 * 10 + 10  # digits: 8x8 inputs, 10 classes


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[RunSpec, object]]:
    data = idbench.data.load("digits")
    specs = {
        "baseline": RunSpec(model=MODEL, dataset="digits", seed=0, lr=0.1, epochs=1),
        "probe": RunSpec(model=MODEL, dataset="digits", seed=0, lr=0.1, epochs=1,
                         projection="fastfood", d=20),
    }
    return {role: (spec, run(spec, data)) for role, spec in specs.items()}


@pytest.fixture(scope="module")
def rows(trained) -> dict[str, RunRow]:
    return {
        role: run_row(spec, result, cell="cell0", suite="demo", role=role, metric="accuracy",
                      device=device_name("cpu"))
        for role, (spec, result) in trained.items()
    }


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_run_row_maps_spec_result_and_provenance(trained, rows):
    spec, result = trained["probe"]
    probe, baseline = rows["probe"], rows["baseline"]
    assert probe.run_key == spec.key() != baseline.run_key
    assert (probe.model, probe.dataset, probe.D, probe.cell, probe.suite) == (
        MODEL, "digits", D_FC, "cell0", "demo")
    assert (probe.projection, probe.normalisation, probe.compartments) == (
        "fastfood", "unit-column", "1")
    assert (probe.n_compartments, probe.d, probe.d_total) == (1, 20, 20)
    assert (probe.method, probe.method_options, probe.projection_options) == ("fpd", "{}", "{}")
    assert (probe.lr, probe.epochs, probe.steps_budget) == (0.1, 1.0, None)
    assert probe.steps == result.steps == 11  # 1 epoch: ceil(1294 train digits / 128)
    assert (probe.val_score, probe.test_score) == (result.val_score, result.test_score)
    assert json.loads(probe.history) == result.history
    assert json.loads(probe.versions)["torch"] == versions()["torch"]
    assert datetime.fromisoformat(probe.timestamp).tzinfo == timezone.utc
    assert baseline.D == D_FC
    assert [baseline.projection, baseline.normalisation, baseline.compartments,
            baseline.n_compartments, baseline.d, baseline.d_total] == [None] * 6


def test_method_options_are_what_the_method_added(trained):
    spec, result = trained["probe"]
    extra = {"sigma": 0.5, "antithetic": True}  # what e.g. nes.describe() adds
    info = dataclasses.replace(result.info, method_options=extra)
    result = dataclasses.replace(result, info=info)
    row = run_row(spec, result, cell="c", suite=None, role="probe", metric="accuracy", device="cpu")
    assert row.method_options == '{"antithetic": true, "sigma": 0.5}'


def test_put_get_and_table_roundtrip(tmp_path, rows):
    store = RunStore(tmp_path / "out")
    assert store.get(rows["probe"].run_key) is None and not store.has(rows["probe"].run_key)
    for row in rows.values():
        store.put(row)
    for row in rows.values():
        assert store.has(row.run_key)
        assert store.get(row.run_key) == row
    table = store.table()
    assert table.columns == list(RunRow.model_fields)
    assert table.schema == polars_schema(RunRow)
    assert (table.schema["D"], table.schema["lr"], table.schema["diverged"], table.schema["d"],
            table.schema["role"]) == (pl.Int64, pl.Float64, pl.Boolean, pl.Int64, pl.String)
    by_key = {r["run_key"]: RunRow.model_validate(r) for r in table.iter_rows(named=True)}
    assert by_key == {row.run_key: row for row in rows.values()}


def test_same_key_twice_leaves_one_row(tmp_path, rows):
    store = RunStore(tmp_path)
    store.put(rows["probe"])
    store.put(rows["probe"].model_copy(update={"val_score": 0.75}))
    table = store.table()
    assert table.height == 1
    assert table["val_score"].to_list() == [0.75]
    assert store.get(rows["probe"].run_key).val_score == 0.75
    assert temp_files(tmp_path / "runs") == []


def test_reads_are_cached_until_a_file_changes(tmp_path, rows, monkeypatch):
    """Each file is parsed once while it is unchanged; a row stored or replaced by another store
    of the same folder (as by another process) is seen at the next read."""
    reader, other = RunStore(tmp_path), RunStore(tmp_path)
    other.put(rows["probe"])
    store_module._FILES.clear()  # as if another process had written it: not in this one's cache
    parsed: list[str] = []
    real_file, real_table = store_module._read_file, store_module._read_table
    monkeypatch.setattr(store_module, "_read_file",
                        lambda path, kind: parsed.append(path.name) or real_file(path, kind))
    monkeypatch.setattr(store_module, "_read_table",
                        lambda kind, folder, listing: parsed.append(kind.folder)
                        or real_table(kind, folder, listing))
    key = rows["probe"].run_key
    assert reader.get(key) == reader.get(key) == rows["probe"]
    assert reader.table().height == reader.table().height == 1
    assert parsed == [f"{key}.parquet", "runs"]  # one parse each
    other.put(rows["probe"].model_copy(update={"val_score": 0.75}))  # replaced
    assert reader.get(key).val_score == 0.75
    assert reader.table()["val_score"].to_list() == [0.75]
    other.put(rows["baseline"])  # added
    assert reader.table().height == 2 and reader.get(rows["baseline"].run_key) == rows["baseline"]
    (tmp_path / "runs" / f"{key}.parquet").unlink()  # removed
    assert reader.get(key) is None and reader.table().height == 1



def test_a_row_put_here_is_read_back_without_parsing_its_file(tmp_path, rows, monkeypatch):
    """A put remembers the frame it wrote, so a measurement reading the runs it has just adopted
    or trained does not parse them again; a file changed since (another process) is parsed."""
    store, key = RunStore(tmp_path), rows["probe"].run_key
    store.put(rows["probe"])
    real_file = store_module._read_file
    monkeypatch.setattr(store_module, "_read_file",
                        lambda path, kind: pytest.fail(f"{path.name} was parsed"))
    assert store.get(key) == rows["probe"]
    path = tmp_path / "runs" / f"{key}.parquet"
    changed = pl.read_parquet(path).with_columns(pl.lit(0.25).alias("val_score"))
    changed.write_parquet(path)  # rewritten behind this process's back
    parsed: list[str] = []
    monkeypatch.setattr(store_module, "_read_file",
                        lambda path, kind: parsed.append(path.name) or real_file(path, kind))
    assert store.get(key).val_score == 0.25 and parsed == [f"{key}.parquet"]

WRITER = textwrap.dedent("""
    import os, sys
    from idbench.schema import RunRow
    from idbench.store import RunStore
    out, template, keys, crash = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "crash"
    row = RunRow.model_validate_json(open(template).read())
    store = RunStore(out)
    if crash:  # die like a killed process between writing the temp file and renaming it
        os.replace = lambda *args: os._exit(9)
    for i in map(int, keys.split(",")):
        store.put(row.model_copy(update={"run_key": f"k{i:03d}", "seed": i}))
""")


def writer(tmp_path: Path, out: Path, row: RunRow, keys: list[int], crash: bool = False):
    template = tmp_path / "template.json"
    template.write_text(row.model_dump_json())
    args = [str(out), str(template), ",".join(map(str, keys)), "crash" if crash else "-"]
    return subprocess.Popen([sys.executable, "-c", WRITER, *args])


def test_two_processes_writing_overlapping_keys(tmp_path, rows):
    out = tmp_path / "out"
    first = writer(tmp_path, out, rows["probe"], list(range(0, 50)))
    second = writer(tmp_path, out, rows["probe"], list(range(74, 24, -1)))
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    table = RunStore(out).table()
    assert sorted(table["run_key"]) == [f"k{i:03d}" for i in range(75)]
    assert all(int(key[1:]) == seed for key, seed in table.select("run_key", "seed").iter_rows())
    assert temp_files(out / "runs") == []


def test_failed_rename_leaves_old_rows_and_no_temp(tmp_path, rows, monkeypatch):
    store = RunStore(tmp_path)
    store.put(rows["baseline"])

    def crash(*args):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(RuntimeError):
        store.put(rows["probe"])
    with pytest.raises(RuntimeError):  # overwriting keeps the old complete file
        store.put(rows["baseline"].model_copy(update={"val_score": 0.0}))
    monkeypatch.undo()
    assert not store.has(rows["probe"].run_key)
    assert store.table()["run_key"].to_list() == [rows["baseline"].run_key]
    assert store.get(rows["baseline"].run_key) == rows["baseline"]
    assert temp_files(tmp_path / "runs") == []


def test_killed_writer_leaves_a_temp_file_that_readers_ignore(tmp_path, rows):
    out = tmp_path / "out"
    store = RunStore(out)
    store.put(rows["baseline"])
    assert writer(tmp_path, out, rows["probe"], [7], crash=True).wait(timeout=60) == 9
    leftovers = temp_files(out / "runs")
    assert len(leftovers) == 1 and re.fullmatch(r"\.tmp-\d+-[0-9a-f]{8}-[0-9a-f]{8}-k007\.parquet",
                                                 leftovers[0])
    # a half-written leftover is ignored too
    good = (out / "runs" / f"{rows['baseline'].run_key}.parquet").read_bytes()
    (out / "runs" / ".tmp-k008-1-abcd.parquet").write_bytes(good[: len(good) // 2])
    assert not store.has("k007") and store.get("k007") is None
    assert store.table()["run_key"].to_list() == [rows["baseline"].run_key]


def test_opening_a_store_removes_the_temp_files_of_dead_writers_only(tmp_path, rows):
    out = tmp_path / "out"
    RunStore(out).put(rows["baseline"])
    assert writer(tmp_path, out, rows["probe"], [7], crash=True).wait(timeout=60) == 9
    [dead] = temp_files(out / "runs")
    live = temp_path(out / "runs" / "k009.parquet")  # as this (live) process would name it
    live.write_bytes(b"being written")
    other = out / "runs" / ".tmp-k008-1-abcd.parquet"  # not a name idbench writes: kept
    other.write_bytes(b"?")
    RunStore(out)
    assert sorted(temp_files(out / "runs")) == sorted([live.name, other.name])
    assert dead not in temp_files(out / "runs")
    assert RunStore(out).table()["run_key"].to_list() == [rows["baseline"].run_key]


@pytest.mark.parametrize("sub", ["out", "a/b/out"])
def test_unwritable_folder_is_an_error_and_leaves_nothing(tmp_path, sub):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(IdbenchError, match=r"cannot write to output folder .*choose another --out"):
        RunStore(blocker / sub)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_failed_probe_removes_the_folders_it_created(tmp_path, monkeypatch):
    def refuse(self, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(IdbenchError, match="cannot write to output folder .*Permission denied"):
        RunStore(tmp_path / "new" / "out")
    assert list(tmp_path.iterdir()) == []


def test_other_schema_version_is_refused(tmp_path, rows):
    store = RunStore(tmp_path)
    store.put(rows["baseline"])
    store.put(rows["probe"].model_copy(update={"schema_version": 999}))
    with pytest.raises(IdbenchError, match="schema version 999.*fresh --out"):
        store.table()
    with pytest.raises(IdbenchError, match="schema version 999"):
        store.get(rows["probe"].run_key)


def test_older_schema_with_other_columns_is_refused(tmp_path, rows):
    store = RunStore(tmp_path)
    store.put(rows["baseline"])
    pl.DataFrame({"schema_version": [0], "run_key": ["old"]}).write_parquet(
        tmp_path / "runs" / "old.parquet")
    with pytest.raises(IdbenchError, match=r"old\.parquet holds results of schema version 0"):
        store.table()


def test_corrupt_file_is_named_with_the_fix(tmp_path, rows):
    store = RunStore(tmp_path)
    store.put(rows["baseline"])
    store.put(rows["probe"])
    path = tmp_path / "runs" / f"{rows['probe'].run_key}.parquet"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IdbenchError, match=re.escape(str(path)) + ".*delete it"):
        store.table()
    with pytest.raises(IdbenchError, match="delete it"):
        store.get(rows["probe"].run_key)


def test_empty_store_has_all_columns(tmp_path):
    store = RunStore(tmp_path)
    runs, measurements = store.table(), store.measurements()
    assert runs.height == 0 and runs.schema == polars_schema(RunRow)
    assert runs.columns == list(RunRow.model_fields)
    assert measurements.height == 0 and measurements.columns == list(MeasurementRow.model_fields)
    assert measurements.schema == polars_schema(MeasurementRow)
    assert (measurements.schema["d_int"], measurements.schema["censored"]) == (pl.Float64, pl.Boolean)


def measurement(cell: str, d_int: int | None) -> MeasurementRow:
    return MeasurementRow(
        cell=cell, suite=None, suite_version=None, model=MODEL, dataset="digits", D=D_FC,
        metric="accuracy", projection="fastfood", projection_options="{}",
        normalisation="unit-column", method="fpd", method_options="{}", compartments="1", seeds=3,
        epochs=1.0, steps_budget=None, batch_size=128, optimizer="sgd", baseline_kind="local",
        threshold=0.9, search="bisect", d_min=10, d_max=1000, resolution=0.05, grid=None,
        tune_trials=0, tune_seeds=1, tune_at="ref:100", lr_baseline=0.1, lr_subspace=0.1, lr_scaling="inverse-d", schedule="cosine", warmup=0.05, baseline_mean=0.9,
        baseline_std=0.01, threshold_score=0.81, d_int=d_int, d_lo=None, d_hi=d_int, ci_low=None,
        ci_high=None, censored=d_int is None, probes="[]", n_runs=12, wall_s=3.5, device="cpu",
        versions=json.dumps(versions(), sort_keys=True), git_rev=git_rev(), timestamp=now_iso(),
    )


def test_measurements_roundtrip_and_exports(tmp_path, rows):
    store = RunStore(tmp_path / "out")
    done, censored = measurement("cellA", 120), measurement("cellB", None)
    for row in (done, censored):
        store.put_measurement(row)
    assert store.get_measurement("cellA") == done and store.get_measurement("cellC") is None
    assert store.measurements()["d_int"].to_list() == [120, None]
    for row in rows.values():
        store.put(row)
    board = tmp_path / "leaderboards" / "demo"
    store_module.export(store.table(), board / "runs.parquet")
    store_module.export(store.measurements(), board / "measurements.parquet")
    assert pl.read_parquet(board / "runs.parquet").equals(store.table())
    assert pl.read_parquet(board / "measurements.parquet").equals(store.measurements())
    assert sorted(p.name for p in board.iterdir()) == ["measurements.parquet", "runs.parquet"]


def test_cell_runs_lists_each_run_under_every_cell_that_used_it(tmp_path, rows):
    """A run stored under the cell that trained it (cell0) is listed under every measurement whose
    run_keys name it; a measurement without run_keys (older rows) gets the runs of its own key."""
    store = RunStore(tmp_path)
    for row in rows.values():
        store.put(row)
    baseline, probe = rows["baseline"].run_key, rows["probe"].run_key
    shares = measurement("cellA", 120).model_copy(update={"run_keys": json.dumps([baseline])})
    both = measurement("cellB", 120).model_copy(update={"run_keys": json.dumps([baseline, probe])})
    older = measurement("cell0", 120)  # run_keys null: stored before the column
    for row in (shares, both, older):
        store.put_measurement(row)
    runs = store_module.cell_runs(store.table(), store.measurements())
    listed = sorted(runs.select("cell", "run_key").iter_rows())
    assert listed == sorted([("cellA", baseline), ("cellB", baseline), ("cellB", probe),
                             ("cell0", baseline), ("cell0", probe)])
    assert runs.schema == store.table().schema
    only_a = store_module.cell_runs(store.table(),
                                    store.measurements().filter(pl.col("cell") == "cellA"))
    assert only_a["run_key"].to_list() == [baseline] and only_a["lr"].to_list() == [rows["baseline"].lr]


def test_provenance_helpers():
    assert set(versions()) == {"idbench", "torch", "python", "polars", "optuna", "numpy"}
    assert versions()["polars"] == pl.__version__
    rev = git_rev()
    assert rev is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", rev)
    assert datetime.now(timezone.utc) - datetime.fromisoformat(now_iso()) < timedelta(seconds=5)
    assert device_name("cpu") == "cpu"


def test_rows_of_an_older_schema_are_upgraded_with_defaults_and_nulls(tmp_path, rows):
    """A store written before columns were added still reads: the upgrade path fills each
    missing column with its field's default, or null where the field is optional."""
    store = RunStore(tmp_path)
    store.put(rows["baseline"])
    store.put(rows["probe"])
    path = tmp_path / "runs" / f"{rows['probe'].run_key}.parquet"
    optional = [n for n, f in RunRow.model_fields.items()  # X | None: null when missing
                if type(None) in typing.get_args(f.annotation) and (f.is_required() or f.default is None)]
    assert "grad_cosine" in optional
    pl.read_parquet(path).drop(optional).write_parquet(path)  # as an older idbench wrote it
    row = store.get(rows["probe"].run_key)
    assert row is not None and all(getattr(row, name) is None for name in optional)
    table = store.table()
    assert table.schema == polars_schema(RunRow) and table.height == 2
    upgraded = table.filter(pl.col("run_key") == rows["probe"].run_key)
    assert upgraded.select(optional).null_count().row(0) == (1,) * len(optional)
    assert upgraded["val_score"][0] == rows["probe"].val_score


def test_rows_missing_a_required_column_are_refused_with_the_column(tmp_path, rows):
    store = RunStore(tmp_path)
    store.put(rows["probe"])
    path = tmp_path / "runs" / f"{rows['probe'].run_key}.parquet"
    pl.read_parquet(path).drop("val_score").write_parquet(path)
    with pytest.raises(IdbenchError, match=r"without the column 'val_score'.*fresh --out"):
        store.table()
    with pytest.raises(IdbenchError, match="without the column 'val_score'"):
        store.get(rows["probe"].run_key)
