"""Where the runs start: each cell's d_int against the same cell from init, and against no SAID.

A fine-tuning board measures one cell (model, dataset, budget, projection x method) from several
starting points theta0 (init, a checkpoint pretrained on another task, a burn-in of a few
full-space steps), each with and without SAID. Its question is a ratio: does this start raise or
lower d_int? This view answers it, one row per cell of a group that differs only in theta0 and
SAID::

    | Model | Dataset | Cell         | theta0         | SAID | d_int90      | × from init        | × SAID |
    | fc    | part=b  | fastfood fpd | init           | no   | 65 [56, 75]  |                    |        |
    | fc    | part=b  | fastfood fpd | checkpoint[..] | no   | 95 [72, 124] | ×1.47 [1.14, 1.90] |        |

``× from init``: the cell's d_int over the same cell's from init with the same SAID setting;
``× SAID``: a SAID cell's d_int over the same cell's without SAID from the same theta0. Both come
with the ratio's 95% interval, computed as the comparison view's ratios to dense are
(:func:`idbench.leaderboard.comparison.ratio_to`: Welch's interval over both cells' independent
draws where both are pooled over draws, else one bootstrap resampling of both cells' seeds).
``≈`` marks an interval containing 1: the two starts are not told apart.

Example::

    if starting_point.applies(df):
        print(starting_point.to_markdown(df))
"""

from __future__ import annotations

import polars as pl

from idbench.leaderboard.comparison import estimate_text, html_table, markdown_table, ratio_to
from idbench.leaderboard.tables import d_int_name, fmt_value, varies

INIT = "init"  # the theta0 every start is compared with
# the cells of a group differ only in where they start and in SAID
GROUP = ["dataset", "model", "D", "epochs", "replicate", "optimizer", "projection",
         "projection_options", "method", "method_options", "compartments"]
SPLIT = [("epochs", "Epochs"), ("replicate", "Replicate"), ("optimizer", "Optimiser")]


def applies(df: pl.DataFrame) -> bool:
    """Whether the leaderboard rows ``df`` (from :func:`~idbench.leaderboard.tables.table`) hold
    cells that differ in theta0 or SAID (the table keeps those columns only where they vary)."""
    return "theta0" in df.columns or "said" in df.columns


def _starts(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with both columns present (a board varying only one of them lacks the other)."""
    if "theta0" not in df.columns:
        df = df.with_columns(theta0=pl.lit(INIT))
    if "said" not in df.columns:
        df = df.with_columns(said=pl.lit(False))
    return df


def _ratio(row: dict, reference: dict | None) -> str:
    """The ratio's text (:class:`~idbench.leaderboard.comparison.Ratio`, a bound marked ``≤`` or
    ``≥``): empty where there is nothing to compare with (the reference itself or not measured),
    ``—`` where no ratio exists (a cell censored, pooled differently, or both passing at d_min)."""
    if reference is None or reference["cell"] == row["cell"]:
        return ""
    found = ratio_to(row, reference)
    return "—" if found is None else str(found)


def view(df: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)``: every cell of a group with several starts, init first, then the other
    starts in order, each without SAID before with it."""
    df = _starts(df)
    split = [(c, title) for c, title in SPLIT if varies(df, c)]
    headers = ["Model", "Dataset"] + [title for _, title in split] + [
        "Cell", "theta0", "SAID", d_int_name(df), "× from init", "× SAID"]
    rows = []
    for _, part in df.group_by(GROUP, maintain_order=True):
        if part.height < 2:
            continue
        cells = {(r["theta0"], r["said"]): r for r in part.to_dicts()}
        order = sorted(cells, key=lambda k: (k[0] != INIT, k[0], k[1]))
        for theta0, said in order:
            row = cells[(theta0, said)]
            label = f"{row['projection']} {row['method']}"
            if row["compartments"] != "1":
                label += f" ({row['compartments']} compartments)"
            line = [row["model"], row["dataset"]] + [fmt_value(row[c]) for c, _ in split]
            line += [label, theta0, "yes" if said else "no", estimate_text(row),
                     _ratio(row, cells.get((INIT, said))),
                     _ratio(row, cells.get((theta0, False))) if said else ""]
            rows.append(line)
    return headers, rows


def caption(df: pl.DataFrame) -> str:
    name = d_int_name(df)
    pooled = "draw_d_ints" in df.columns
    return (
        f"Where the runs start: each cell's {name} (total directions, with its 95% CI and flags "
        f"as in the table above) beside × from init: its {name} over the same cell's from init "
        f"with the same SAID setting, and × SAID: a SAID cell's {name} over the same cell's "
        "without SAID from the same theta0. Each ratio has its own 95% interval, "
        + ("Welch's t-interval over both cells' independent draws (the ratio of geometric "
           "means). " if pooled else
           "the Student-t scaled bootstrap resampling both cells' seeds together. ")
        + "≈: the interval contains 1, so the two starts are not told apart. ≤ (≥): the cell "
        "(the reference) passes at its smallest d in some draw, so the ratio is at most (at "
        "least) that. —: no ratio (a cell censored, both passing at their smallest d, or one "
        "pooled over draws and the other not). Empty: the reference itself, or not measured."
    )


def to_markdown(df: pl.DataFrame) -> str:
    """The view as a GitHub Markdown table with its caption; empty without a group of starts."""
    headers, rows = view(df) if applies(df) else ([], [])
    labels = len(headers) - 3  # d_int and its two ratios are the numeric columns
    return markdown_table(headers, rows, caption(df), labels) if rows else ""


def to_html(df: pl.DataFrame) -> str:
    """The view as an HTML ``<table id="starting-point">``; empty without a group of starts."""
    headers, rows = view(df) if applies(df) else ([], [])
    labels = len(headers) - 3
    return html_table(headers, rows, caption(df), "starting-point", labels) if rows else ""
