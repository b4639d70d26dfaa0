"""The view of where runs start: each cell's ratio to the same cell from init and without SAID, on
fake measurements pooled over draws (no training)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from idbench.estimate import pooled_ratio
from idbench.frames import polars_schema
from idbench.leaderboard import format_table, starting_point, table
from idbench.leaderboard.tables import fmt_ratio
from idbench.schema import MeasurementRow

CHECKPOINT, BURN_IN = "checkpoint[run=abc]", "burn-in[steps=2,lr=0.05]"
# (model, theta0, SAID) -> the d_int of each of its 4 draws; None: passes at d_min in a draw
DRAWS = {
    ("fc", "init", False): [60.0, 65.0, 70.0, 66.0],
    ("fc", "init", True): [75.0, 80.0, 72.0, 81.0],
    ("fc", CHECKPOINT, False): [90.0, 110.0, 85.0, 96.0],
    ("fc", CHECKPOINT, True): [130.0, 140.0, 125.0, 139.0],
    ("fc", BURN_IN, False): [32.0, 40.0, 36.0, 33.0],
    ("lenet", "init", False): [50.0, 52.0, 55.0, 51.0],  # alone in its group: no row
}
AT_D_MIN = ("fc", BURN_IN, False)


def _row(model: str, theta0: str, said: bool, draws: list[float]) -> MeasurementRow:
    mean = float(pl.Series(draws).log().mean())
    d_int = round(2.718281828459045 ** mean, 6)
    return MeasurementRow(
        cell=f"{model}-{theta0}-{said}", suite="fake", suite_version="1", model=model,
        dataset="digits", D=20_000, metric="accuracy", projection="fastfood",
        projection_options="{}", normalisation="unit-column", method="fpd", method_options="{}",
        compartments="1", seeds=3, epochs=1.0, steps_budget=None, batch_size=64, optimizer="sgd",
        baseline_kind="local", threshold=0.9, search="grid", d_min=32, d_max=1024,
        resolution=0.1, grid="[32, 64, 128]", tune_trials=4, tune_seeds=2, tune_at="ref:128",
        lr_baseline=0.1, lr_subspace=0.5, lr_scaling="inverse-d", schedule="constant",
        warmup=0.0, baseline_mean=0.9, baseline_std=0.01, threshold_score=0.81, d_int=d_int,
        d_lo=None if (model, theta0, said) == AT_D_MIN else 32, d_hi=64, ci_low=d_int * 0.8,
        ci_high=d_int * 1.2, censored=False, probes="[]", n_runs=40, wall_s=10.0, device="cpu",
        versions="{}", git_rev="abc", timestamp="2026-01-01T00:00:00+00:00", theta0=theta0,
        said=said, draws=len(draws), draw_d_ints=json.dumps(draws))


@pytest.fixture(scope="module")
def board() -> pl.DataFrame:
    rows = [_row(*key, draws).model_dump() for key, draws in DRAWS.items()]
    return table(pl.DataFrame(rows, schema=polars_schema(MeasurementRow)))


def _ratio_text(cell: tuple, reference: tuple) -> str:
    value, low, high = pooled_ratio(DRAWS[cell], DRAWS[reference])
    return f"×{fmt_ratio(value)} [{fmt_ratio(low)}, {fmt_ratio(high)}]"


def _by_start(board: pl.DataFrame) -> dict[tuple[str, str], dict[str, str]]:
    headers, rows = starting_point.view(board)
    return {(r[headers.index("theta0")], r[headers.index("SAID")]): dict(zip(headers, r))
            for r in rows}


def test_each_start_is_divided_by_the_same_cell_from_init_with_the_same_said(board):
    rows = _by_start(board)
    assert rows[(CHECKPOINT, "no")]["× from init"] == _ratio_text(
        ("fc", CHECKPOINT, False), ("fc", "init", False))
    assert rows[(CHECKPOINT, "yes")]["× from init"] == _ratio_text(
        ("fc", CHECKPOINT, True), ("fc", "init", True))
    assert rows[("init", "no")]["× from init"] == "" and rows[("init", "yes")]["× from init"] == ""


def test_said_is_divided_by_the_same_start_without_it(board):
    rows = _by_start(board)
    assert rows[(CHECKPOINT, "yes")]["× SAID"] == _ratio_text(
        ("fc", CHECKPOINT, True), ("fc", CHECKPOINT, False))
    assert rows[("init", "yes")]["× SAID"] == _ratio_text(("fc", "init", True), ("fc", "init", False))
    assert rows[(CHECKPOINT, "no")]["× SAID"] == ""


def test_a_ratio_whose_interval_contains_one_is_marked_and_one_above_it_is_not(board):
    rows = _by_start(board)
    value, low, high = pooled_ratio(DRAWS[("fc", CHECKPOINT, False)], DRAWS[("fc", "init", False)])
    assert low > 1 and not rows[(CHECKPOINT, "no")]["× from init"].endswith("≈")
    same = _row("fc", "init", False, DRAWS[("fc", "init", False)]).model_dump()
    twin = {**same, "cell": "twin", "theta0": "burn-in[steps=1,lr=0.05]",
            "draw_d_ints": json.dumps([66.0, 60.0, 70.0, 65.0])}
    df = table(pl.DataFrame([same, twin], schema=polars_schema(MeasurementRow)))
    headers, rows = starting_point.view(df)
    assert rows[1][headers.index("× from init")].endswith("≈")


def test_a_cell_that_passes_at_d_min_gives_an_upper_bound(board):
    entry = _by_start(board)[(BURN_IN, "no")]["× from init"]
    assert entry == "≤ " + _ratio_text(("fc", BURN_IN, False), ("fc", "init", False))


def test_rows_are_groups_of_several_starts_init_first(board):
    headers, rows = starting_point.view(board)
    assert [r[headers.index("Model")] for r in rows] == ["fc"] * 5  # lenet's one cell: no row
    assert [(r[headers.index("theta0")], r[headers.index("SAID")]) for r in rows] == [
        ("init", "no"), ("init", "yes"), (BURN_IN, "no"), (CHECKPOINT, "no"), (CHECKPOINT, "yes")]
    assert rows[0][headers.index("d_int90")].startswith("65 ")


def test_the_view_is_on_the_board_only_where_cells_start_differently(board):
    assert "Where the runs start" in format_table(board, "md")
    assert 'id="starting-point"' in format_table(board, "html")
    plain = board.filter((pl.col("theta0") == "init") & ~pl.col("said")).drop("theta0", "said")
    assert not starting_point.applies(plain)
    assert "Where the runs start" not in format_table(plain, "md")
    assert 'id="starting-point"' not in format_table(plain, "html")
