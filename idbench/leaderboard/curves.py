"""Validation score against training epochs, read from the runs' stored histories.

Every run row stores its history: one entry per evaluation, with the step and the validation
score. On a board whose cells each measure one d (a fixed-d study, ``grid: [d]``), each method of
a network is one curve: the runs of its seeds at that d, and, for the full-space baseline, the
baseline's runs (shared by the network's cells of one budget, each counted once); where a network
has cells at several budgets, each budget is a curve of its own, its label naming the epochs. At
every evaluation the curve is the mean over seeds, with their lowest and highest score, against
epochs (the step over the run's steps per epoch), so a reader sees whether a run was still
climbing when its budget ended.
Cells measured at several d (a d search) have no such curve.

Example::

    frame = curves(table(measurements, runs), runs)
    frame.columns  # dataset, model, label, epoch, mean, low, high, seeds
"""

from __future__ import annotations

import json

import polars as pl

SERIES = ["dataset", "model", "label"]  # one curve per network and method
COLUMNS = [*SERIES, "epoch", "mean", "low", "high", "seeds"]


def _single_d(df: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """The board rows of ``df`` whose probe runs lie at one d."""
    probes = runs.filter(pl.col("role") == "probe")
    spans = probes.group_by("cell").agg(pl.col("d").n_unique().alias("span"))
    return df.filter(pl.col("cell").is_in(spans.filter(pl.col("span") == 1)["cell"].to_list()))


def _budget(row: dict, budgets: dict[tuple[str, str], int]) -> str:
    """`` · N epochs`` where the row's network has cells at several budgets, else nothing."""
    several = budgets[(row["dataset"], row["model"])] > 1
    return f" · {row['epochs']:g} epochs" if several else ""


def _labels(df: pl.DataFrame, budgets: dict[tuple[str, str], int]) -> dict[str, str]:
    """Cell key -> curve label: method, projection, compartments, and the budget if it varies."""
    labels = {}
    for row in df.iter_rows(named=True):
        label = f"{row['method']} · {row['projection']}"
        if row["compartments"] != "1":
            label += f" · {row['compartments']} compartments"
        labels[row["cell"]] = label + _budget(row, budgets)
    return labels


def _points(runs: pl.DataFrame, label: str) -> list[dict]:
    """One point per evaluation of each run in ``runs``, at the step over the steps of one
    epoch: the run's steps over its epochs (for a run stopped early, the most steps any run of
    ``runs`` took). A run whose budget is in steps has no epoch axis and is left out."""
    out = []
    full = runs["steps"].max()
    for run in runs.unique("run_key", keep="first", maintain_order=True).iter_rows(named=True):
        history = json.loads(run["history"] or "[]")
        if not history or not run["epochs"] or run["steps_budget"] is not None:
            continue
        per_epoch = (full if run["stopped_early"] else run["steps"]) / run["epochs"]
        out += [{"dataset": run["dataset"], "model": run["model"], "label": label,
                 "epoch": round(point["step"] / per_epoch, 6), "score": point["val_score"],
                 "seed": run["seed"]} for point in history]
    return out


def curves(df: pl.DataFrame, runs: pl.DataFrame | None) -> pl.DataFrame:
    """The curves of the board rows ``df`` (:func:`~idbench.leaderboard.tables.table`) from the
    run rows ``runs``: one row per curve and evaluation (columns :data:`COLUMNS`); empty when no
    cell of ``df`` was measured at a single d with run histories."""
    empty = pl.DataFrame(schema={c: pl.Float64 if c in ("epoch", "mean", "low", "high")
                                 else pl.Int64 if c == "seeds" else pl.String for c in COLUMNS})
    if runs is None or runs.height == 0:
        return empty
    single = _single_d(df, runs)
    budgets = {(dataset, model): n for dataset, model, n in single.group_by(
        ["dataset", "model"]).agg(pl.col("epochs").n_unique()).iter_rows()}
    points: list[dict] = []
    for cell, label in _labels(single, budgets).items():
        points += _points(runs.filter((pl.col("cell") == cell) & (pl.col("role") == "probe")),
                          label)
    for _, part in single.group_by(["dataset", "model", "epochs"], maintain_order=True):
        baseline = runs.filter(pl.col("cell").is_in(part["cell"].to_list())
                               & (pl.col("role") == "baseline"))
        first = part.row(0, named=True)
        label = f"{first['optimizer']} · full space (baseline){_budget(first, budgets)}"
        points += _points(baseline, label)
    if not points:
        return empty
    return (pl.DataFrame(points).group_by([*SERIES, "epoch"], maintain_order=True)
            .agg(pl.col("score").mean().alias("mean"), pl.col("score").min().alias("low"),
                 pl.col("score").max().alias("high"), pl.col("seed").n_unique().alias("seeds"))
            .sort([*SERIES, "epoch"], maintain_order=True)
            .with_columns(pl.col("seeds").cast(pl.Int64)).select(COLUMNS))


def applies(df: pl.DataFrame, runs: pl.DataFrame | None) -> bool:
    """Whether some cell of ``df`` has a curve (:func:`curves`)."""
    return curves(df, runs).height > 0
