"""Validation score against epochs from the runs' histories, and the published figure beside
idbench's, on a small fake store of a fixed-d study (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from idbench.frames import polars_schema
from idbench.leaderboard import curves, load_results, reference, render, table
from idbench.schema import MeasurementRow, RunRow

MODEL, DATA = "fc[depth=1,width=8]", "fashion-mnist[augment=true]"
STEPS_PER_EPOCH = 10
# per cell: method, the d of its probes, the validation score of each seed at epochs 1, 2, 3
CELLS = {"c-fpd": ("fpd", [250], [[0.5, 0.6, 0.7], [0.6, 0.7, 0.8]]),
         "c-rbd": ("rbd", [250], [[0.4, 0.6, 0.8], [0.4, 0.7, 0.9]]),
         "c-search": ("fpd", [100, 400], [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]])}
BASELINE = [[0.8, 0.85, 0.9], [0.8, 0.86, 0.88]]


def run_row(cell: str, role: str, method: str, d: int | None, seed: int,
            scores: list[float], stopped_at: int | None = None) -> RunRow:
    history = [{"step": STEPS_PER_EPOCH * (i + 1), "val_score": s, "val_loss": 1 - s,
                "train_loss": 1 - s} for i, s in enumerate(scores)][:stopped_at]
    return RunRow(
        run_key=f"{cell}-{role}-{d}-{seed}", cell=cell, suite="fake", role=role, model=MODEL,
        dataset=DATA, D=6_370, metric="accuracy", projection=None if d is None else "dense",
        projection_options="{}", normalisation=None, method=method, method_options="{}",
        compartments=None if d is None else "1", n_compartments=None, d=d, d_total=d, seed=seed,
        lr=0.1, optimizer="sgd", momentum=0.0, weight_decay=0.0, batch_size=32, epochs=3.0,
        steps_budget=None, schedule="constant", warmup=0.0, eval_every=None, patience=None,
        val_fraction=0.2, split_seed=0, val_score=history[-1]["val_score"], val_loss=0.3,
        test_score=0.0, train_loss=0.2, diverged=False, stopped_early=stopped_at is not None,
        steps=history[-1]["step"], wall_s=1.0, grad_cosine=None, history=json.dumps(history),
        device="cpu", versions="{}", git_rev="abc", timestamp="2026-01-01T00:00:00+00:00")


def measurement_row(cell: str, method: str, grid: list[int], scores: list[list[float]]
                    ) -> MeasurementRow:
    finals = [s[-1] for s in scores]
    probes = [{"d": d, "mean": sum(finals) / 2, "std": abs(finals[0] - finals[1]) / 2 ** 0.5,
               "scores": finals, "passed": True} for d in grid]
    return MeasurementRow(
        cell=cell, suite="fake", suite_version="1", model=MODEL, dataset=DATA, D=6_370,
        metric="accuracy", projection="dense", projection_options="{}",
        normalisation="unit-column", method=method, method_options="{}", compartments="1",
        seeds=2, epochs=3.0, steps_budget=None, batch_size=32, optimizer="sgd",
        baseline_kind="local", threshold=0.9, search="grid", d_min=10, d_max=max(grid),
        resolution=0.1, grid=json.dumps(grid), tune_trials=0, tune_seeds=1, tune_at="ref:250",
        lr_baseline=0.1, lr_subspace=1.0, lr_scaling="inverse-d", schedule="constant",
        warmup=0.0, baseline_mean=0.89, baseline_std=0.01, threshold_score=0.801, d_int=None,
        d_lo=None, d_hi=None, ci_low=None, ci_high=None, censored=True,
        probes=json.dumps(probes), n_runs=6, wall_s=6.0, device="cpu", versions="{}",
        git_rev="abc", timestamp="2026-01-01T00:00:00+00:00")


@pytest.fixture
def store() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A fixed-d study's rows: two cells at d = 250 and a search cell; the baseline runs stored
    once, under the first cell (cells share them); one rbd seed stopped after two epochs."""
    measurements, runs = [], []
    for cell, (method, grid, scores) in CELLS.items():
        measurements.append(measurement_row(cell, method, grid, scores))
        for d in grid:
            for seed, s in enumerate(scores):
                stopped = 2 if (cell, seed) == ("c-rbd", 1) else None
                runs.append(run_row(cell, "probe", method, d, seed, s, stopped))
    runs += [run_row("c-fpd", "baseline", "fpd", None, seed, s) for seed, s in enumerate(BASELINE)]
    runs += [run_row("c-fpd", "tune", "fpd", None, 10_000, [0.1, 0.1, 0.1])]  # not a curve
    frame = lambda rows, model: pl.DataFrame([r.model_dump() for r in rows],  # noqa: E731
                                             schema=polars_schema(model))
    return frame(measurements, MeasurementRow), frame(runs, RunRow)


def test_one_curve_per_method_of_the_single_d_cells_with_the_seeds_spread(store):
    measurements, runs = store
    frame = curves.curves(table(measurements, runs), runs)
    by_label = {label: part for (label,), part in frame.group_by("label", maintain_order=True)}
    assert list(by_label) == ["fpd · dense", "rbd · dense", "sgd · full space (baseline)"]
    fpd = by_label["fpd · dense"]
    assert fpd["epoch"].to_list() == [1.0, 2.0, 3.0]
    assert fpd["mean"].to_list() == pytest.approx([0.55, 0.65, 0.75])
    assert (fpd["low"].to_list(), fpd["high"].to_list()) == ([0.5, 0.6, 0.7], [0.6, 0.7, 0.8])
    rbd = by_label["rbd · dense"]  # the stopped seed's two evaluations sit at epochs 1 and 2
    assert rbd["epoch"].to_list() == [1.0, 2.0, 3.0] and rbd["seeds"].to_list() == [2, 2, 1]
    assert rbd["mean"].to_list() == pytest.approx([0.4, 0.65, 0.8])
    base = by_label["sgd · full space (baseline)"]  # stored once, counted once
    assert base["seeds"].to_list() == [2, 2, 2]
    assert base["mean"].to_list() == pytest.approx([0.8, 0.855, 0.89])


def test_a_network_measured_at_two_budgets_has_a_curve_per_budget(store):
    """A cell of the same method at a longer budget is its own curve (its label names the
    epochs), with a baseline curve per budget; its runs do not pool with the shorter cell's."""
    measurements, runs = store
    longer = measurements.filter(pl.col("cell") == "c-fpd").with_columns(
        pl.lit("c-long").alias("cell"), pl.lit(6.0).alias("epochs"))
    long_runs = pl.DataFrame(
        [run_row("c-long", role, "fpd", d, seed, [0.3] * 6).model_dump() | {"epochs": 6.0}
         for role, d in (("probe", 250), ("baseline", None)) for seed in (0, 1)],
        schema=polars_schema(RunRow))
    both = pl.concat([runs, long_runs])
    frame = curves.curves(table(pl.concat([measurements, longer]), both), both)
    by_label = {label: part for (label,), part in frame.group_by("label", maintain_order=True)}
    assert sorted(by_label) == sorted([
        "fpd · dense · 3 epochs", "rbd · dense · 3 epochs", "fpd · dense · 6 epochs",
        "sgd · full space (baseline) · 3 epochs", "sgd · full space (baseline) · 6 epochs"])
    assert by_label["fpd · dense · 3 epochs"]["mean"].to_list() == pytest.approx(
        [0.55, 0.65, 0.75])  # the 6-epoch runs (0.3 throughout) are not pooled in
    assert by_label["fpd · dense · 6 epochs"]["epoch"].to_list() == [1, 2, 3, 4, 5, 6]
    assert by_label["sgd · full space (baseline) · 6 epochs"]["mean"].to_list() == [0.3] * 6
    assert by_label["sgd · full space (baseline) · 3 epochs"]["mean"].to_list() == pytest.approx(
        [0.8, 0.855, 0.89])


def test_no_curve_without_a_single_d_cell_or_histories(store):
    measurements, runs = store
    search_only = measurements.filter(pl.col("cell") == "c-search")
    assert not curves.applies(table(search_only, runs), runs)
    empty = runs.with_columns(pl.lit("[]").alias("history"))
    assert not curves.applies(table(measurements, empty), empty)
    assert curves.applies(table(measurements, runs), runs)


def test_the_board_draws_the_curves_and_sets_the_published_numbers_beside(
        store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    measurements, runs = store
    (tmp_path / "fake.reference.csv").write_text(
        "# a comment line\nsource,dataset,model,method,basis,d,mean,sd\n"
        f'"Paper 2020, Fig. 1",fashion-mnist,"{MODEL}",sgd,,,89.5,0.2\n'
        f'"Paper 2020, Fig. 1",fashion-mnist,"{MODEL}",rbd,gaussian,250,80.0,0.1\n'
        f'"Paper 2020, Fig. 1",fashion-mnist,"{MODEL}",fpd,gaussian,500,70.0,0.1\n')
    monkeypatch.setattr(reference, "SUITES_DIR", tmp_path)
    paths = render(measurements, runs, tmp_path / "board")
    assert "val_vs_epochs.png" in paths and "val_vs_epochs.svg" in paths
    markdown = (tmp_path / "board" / "leaderboard.md").read_text()
    rows = [line for line in markdown.splitlines()
            if line.startswith(f"| {MODEL} |") and line.split(" | ")[2] in ("sgd", "fpd", "rbd")]
    # sgd: the baseline (89 ± 1); rbd at 250: (0.8 + 0.9) / 2; fpd at 500: no cell measured it
    assert rows == [f"| {MODEL} | {DATA} | sgd | 3 | 89.50 ± 0.20 (full space) | 89.00 ± 1.00 "
                    "(full space) | -0.50 |",
                    f"| {MODEL} | {DATA} | rbd | 3 | 80.00 ± 0.10 (gaussian, d = 250) | 85.00 ± "
                    "7.07 (dense) | +5.00 |"]
    assert "Paper 2020, Fig. 1" in markdown
    html = (tmp_path / "board" / "leaderboard.html").read_text()
    assert 'id="reference"' in html and "against epochs, per method" in html
    measurements.write_parquet(tmp_path / "board" / "measurements.parquet")
    runs.write_parquet(tmp_path / "board" / "runs.parquet")
    again = render(*load_results(tmp_path / "board"), tmp_path / "again")
    assert (tmp_path / "again" / "val_vs_epochs.png").read_bytes() == paths[
        "val_vs_epochs.png"].read_bytes()  # from the stored parquet, the same figure
    monkeypatch.setattr(reference, "SUITES_DIR", tmp_path / "none")
    assert not reference.applies(table(measurements, runs))


def test_the_published_baseline_sits_beside_each_dataset_and_budget_of_the_network(
        store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Cells of one network on the dataset with and without options, and at another budget: the
    full-space row appears once per (dataset, epochs), each with that cell's baseline, and the
    Data column tells them apart."""
    measurements, runs = store
    (tmp_path / "fake.reference.csv").write_text(
        "source,dataset,model,method,basis,d,mean,sd\n"
        f'"Paper 2020, Fig. 1",fashion-mnist,"{MODEL}",sgd,,,89.5,0.2\n')
    monkeypatch.setattr(reference, "SUITES_DIR", tmp_path)
    fpd = measurements.filter(pl.col("cell") == "c-fpd")
    plain = fpd.with_columns(pl.lit("c-plain").alias("cell"), pl.lit("fashion-mnist").alias(
        "dataset"), pl.lit(0.87).alias("baseline_mean"))
    longer = fpd.with_columns(pl.lit("c-long").alias("cell"), pl.lit(30.0).alias("epochs"),
                              pl.lit(0.9).alias("baseline_mean"))
    headers, rows = reference.view(table(pl.concat([measurements, plain, longer]), runs))
    assert headers[1] == "Data"
    assert sorted((r[1], r[3], r[5]) for r in rows) == [
        ("fashion-mnist", "3", "87.00 ± 1.00 (full space)"),
        (DATA, "3", "89.00 ± 1.00 (full space)"),
        (DATA, "30", "90.00 ± 1.00 (full space)")]
