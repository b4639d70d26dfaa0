"""The comparison view: one row per model, one column per projection x method, d_int side by side.

Each cell of the view shows, for one (model, projection, method) measurement::

    319 [307, 337] ×0.96 [0.88, 1.05] ≈

the estimate in *total* directions (d_int times the number of compartments when d counts
directions per compartment, so split and unsplit methods compare on the same axis) with its
flags' marks, its 95% interval on the same axis, and its ratio to the estimate of dense FPD
without compartments on the same row (the reference of Li et al.; with several optimisers, the
one trained by the column's optimiser) with the ratio's own 95% interval: both cells' curves
resampled by one draw of seeds (:func:`idbench.estimate.ratio`), so noise they share cancels.
``≈`` marks a ratio whose interval contains 1: indistinguishable from dense at these seeds.
``≤ ×`` (``≥ ×``) marks a bound: the cell (dense) passes at its smallest d in some draw, so its
d_int, and the ratio, is at most that (the ratio at least that); where both do, no ratio.
Columns split further by compartments (``rbd, layer``), by optimiser where the table holds more
than one, and by options only where one projection x method was measured with several; rows
split by epochs where the budget varies (the budget suite), and by the replicate or the tuner's
draw where they vary.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from html import escape

import polars as pl

from idbench.estimate import pooled_ratio, ratio
from idbench.leaderboard.tables import (
    at_d_min, d_int_name, fmt_d_int, fmt_flags, fmt_interval, fmt_options, fmt_ratio, fmt_value,
    varies,
)
from idbench.search import Probe, curve_of

REFERENCE = ("dense", "fpd", "1")  # projection, method, compartments of the ratio's denominator
ROW = ["dataset", "model", "D"]
BASE = ["projection", "method", "compartments", "optimizer"]
COLUMN = [*BASE, "variant"]
# rows split by these where they vary: the budget suite's epochs, independent re-measurements,
# a study of the tuner's draws, where the runs started and SAID (a fine-tuning suite)
SPLIT = [("epochs", "Epochs"), ("replicate", "Replicate"), ("tune_draw", "Tuner draw"),
         ("theta0", "theta0"), ("said", "SAID")]


@dataclass(frozen=True)
class Ratio:
    """d_int of a cell over d_int of its reference, both in total directions, with the 95%
    interval of the ratio (None below 3 seeds); ``bound`` ``≤`` (``≥``) where the cell (the
    reference) passes at its smallest d in some draw, so its d_int and the ratio are bounds."""

    value: float
    low: float | None
    high: float | None
    bound: str = ""

    @property
    def indistinguishable(self) -> bool:
        """Whether the interval contains 1: the cell's d_int is not told apart from dense's."""
        return self.low is not None and self.high is not None and self.low <= 1 <= self.high

    def __str__(self) -> str:
        text = f"{self.bound + ' ' if self.bound else ''}×{fmt_ratio(self.value)}"
        if self.low is None or self.high is None:
            return text
        high = "∞)" if math.isinf(self.high) else f"{fmt_ratio(self.high)}]"
        return f"{text} [{fmt_ratio(self.low)}, {high}" + (" ≈" if self.indistinguishable else "")


@lru_cache(maxsize=4096)
def _curve_ratio(cell: tuple, reference: tuple) -> tuple[float, float | None, float | None]:
    """:func:`~idbench.estimate.ratio` of two cells' curves, each given as ``(probes JSON,
    threshold score, baseline scores JSON)`` (cached: md, html and the plot ask alike)."""
    curves = []
    for probes, threshold_score, baseline in (cell, reference):
        parsed = [Probe.from_dict(p) for p in json.loads(probes or "[]")]
        curves.append(curve_of(parsed, threshold_score, json.loads(baseline) if baseline else None))
    value, low, high = ratio(*curves)
    return float(value), low, high


def ratio_to(row: dict, reference: dict | None) -> Ratio | None:
    """The :class:`Ratio` of ``row`` to ``reference`` (None: no reference, the reference itself,
    either censored, or both passing at their smallest d, which bounds neither way). The ratio of
    totals is the ratio of d_int times each cell's directions per unit of d."""
    if reference is None or row["cell"] == reference["cell"]:
        return None
    if any(r["censored"] or not r["d_int"] or not r["d_int_total"] for r in (row, reference)):
        return None
    if at_d_min(row) and at_d_min(reference):
        return None

    def key(r: dict) -> tuple:
        return r["probes"], r["threshold_score"], r["baseline_scores"]

    drawn = [bool(r.get("draw_d_ints")) for r in (row, reference)]
    if all(drawn):  # independent draws (idbench.draws): Welch's interval over them
        value, low, high = pooled_ratio(json.loads(row["draw_d_ints"]),
                                        json.loads(reference["draw_d_ints"]))
    elif any(drawn):  # one pooled over draws, one over seeds: no common resampling
        return None
    else:
        value, low, high = _curve_ratio(key(row), key(reference))
    if math.isnan(value):
        return None
    factor = (row["d_int_total"] / row["d_int"]) / (reference["d_int_total"] / reference["d_int"])
    scaled = [None if b is None else b * factor for b in (low, high)]
    bound = "≤" if at_d_min(row) else "≥" if at_d_min(reference) else ""
    return Ratio(value * factor, *scaled, bound)


def _variant(row: dict) -> str:
    """The options of a cell as a rule (``density=1/sqrt(D)``, not its value at this D), so one
    choice made for models of different size is one column."""
    parts = [
        fmt_options(row[name], row[f"{name}_options"], row["D"], values=False)
        .removeprefix(row[name]).strip(" ()")
        for name in ("projection", "method")
    ]
    return "; ".join(p for p in parts if p)


def _column_label(key: dict, shown: set[str]) -> str:
    label = f"{key['projection']} {key['method']}"
    extra = []
    if key["compartments"] != "1":
        extra.append(f"{key['compartments']} compartments")
    if "optimizer" in shown:
        extra.append(key["optimizer"])
    if "variant" in shown and key["variant"]:
        extra.append(key["variant"])
    return label + (f" ({', '.join(extra)})" if extra else "")


def estimate_text(row: dict) -> str:
    """``d_int marks [low, high]``: the estimate with its flags' marks and its 95% interval, in
    total directions (d_int times the cell's directions per unit of d)."""
    factor = (row["d_int_total"] / row["d_int"]) if row["d_int"] and row["d_int_total"] else None
    total = {**row, "d_int": row["d_int_total"],
             "d_max": row["d_max_total"] if row["d_max_total"] is not None else row["d_max"],
             "d_hi": None if row["d_hi"] is None or factor is None else round(row["d_hi"] * factor)}
    marks = fmt_flags(row)
    text = fmt_d_int(total) + (f" {marks}" if marks else "")
    low, high = row["ci_low"], row["ci_high"]
    if not row["censored"] and factor is not None and low is not None and high is not None:
        text += " " + fmt_interval(low * factor, high * factor)
    return text


def _entry(row: dict, reference: dict | None) -> str:
    """``d_int [low, high] ×ratio [low, high]`` in total directions (the module docstring)."""
    text = estimate_text(row)
    if reference is not None and row["cell"] == reference["cell"] and not row["censored"]:
        return text + " ×1.00"
    found = ratio_to(row, reference)
    return text if found is None else f"{text} {found}"


@dataclass(frozen=True)
class Layout:
    """The view's shape: the row splits that vary (column, title), the column keys in order, what
    column labels name beyond projection and method, and per row its cells by column key and
    their references by optimiser."""

    split: list[tuple[str, str]]
    columns: list[dict]
    shown: set[str]
    lines: list[tuple[dict[tuple, dict], dict[str, dict]]]


def layout(df: pl.DataFrame) -> Layout:
    """The :class:`Layout` of the comparison view of the leaderboard rows ``df``."""
    split = [(c, label) for c, label in SPLIT if c in df.columns and varies(df, c)]
    df = df.with_columns(pl.Series("variant", [_variant(r) for r in df.to_dicts()], pl.String))
    shown = {"optimizer"} if varies(df, "optimizer") else set()
    if df.select(BASE).n_unique() < df.select(COLUMN).n_unique():
        shown.add("variant")  # one projection x method measured with several options
    columns = df.select(COLUMN).unique(maintain_order=True).sort(COLUMN).to_dicts()
    lines = []
    for _, part in df.group_by(ROW + [c for c, _ in split], maintain_order=True):
        cells = {tuple(r[c] for c in COLUMN): r for r in part.to_dicts()}
        references: dict[str, dict] = {}  # per optimiser: a ratio compares like with like
        for key, cell in cells.items():
            if key[:3] == REFERENCE:
                references.setdefault(key[3], cell)
        lines.append((cells, references))
    return Layout(split, columns, shown, lines)


def _row_label(first: dict, split: list[tuple[str, str]]) -> list[str]:
    return [first["model"], first["dataset"], str(first["D"])] + [
        fmt_value(first[c]) for c, _ in split]


def comparison(df: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)`` of the comparison view of the leaderboard rows ``df``."""
    view = layout(df)
    headers = ["Model", "Dataset", "D"] + [label for _, label in view.split]
    headers += [_column_label(c, view.shown) for c in view.columns]
    rows = []
    for cells, references in view.lines:
        line = _row_label(next(iter(cells.values())), view.split)
        for column in view.columns:
            row = cells.get(tuple(column[c] for c in COLUMN))
            line.append("" if row is None else _entry(row, references.get(column["optimizer"])))
        rows.append(line)
    return headers, rows


def ratios(df: pl.DataFrame) -> list[tuple[str, str, Ratio]]:
    """``(row label, column label, ratio)`` of every cell of the view with a ratio to its
    reference (what the plot of ratios draws), row by row."""
    view = layout(df)
    found = []
    for cells, references in view.lines:
        first = next(iter(cells.values()))
        label = " · ".join([first["model"], first["dataset"]] + [
            f"{title.lower()} {fmt_value(first[c])}" for c, title in view.split])
        for column in view.columns:
            row = cells.get(tuple(column[c] for c in COLUMN))
            value = None if row is None else ratio_to(row, references.get(column["optimizer"]))
            if value is not None:
                found.append((label, _column_label(column, view.shown), value))
    return found


def caption(df: pl.DataFrame) -> str:
    name = d_int_name(df)
    return (
        f"Comparison: per model, {name} of each projection x method in total directions (d_int "
        "times the number of compartments where d counts directions per compartment"
        + ("; its flags marked as in the table above" if df["flags"].drop_nulls().len() else "")
        + "), with its 95% CI on the same axis and ×: the ratio to "
        f"{name} of dense FPD without compartments "
        f"{'with the same optimiser ' if varies(df, 'optimizer') else ''}on the same row, with "
        + ("the ratio's own 95% interval: Welch's t-interval over both cells' independent "
           "draws (the ratio of geometric means; none where one cell is pooled over draws and "
           "the other is not). " if "draw_d_ints" in df.columns else
           "the ratio's own 95% interval: the same Student-t scaled bootstrap as each CI, both "
           "cells' seeds resampled together where they have as many (so noise they share "
           "cancels), apart otherwise. ")
        + "≈: the ratio's interval "
        f"contains 1, so the cell's {name} is indistinguishable from dense's at these seeds. "
        + ("≤ × (≥ ×): the cell (dense) passes at its smallest d in some draw, so the ratio is "
           "at most (at least) that. " if any(r.bound for _, _, r in ratios(df)) else "")
        + "Empty: not measured."
    )


def to_markdown(df: pl.DataFrame) -> str:
    """The comparison view as a GitHub Markdown table, followed by its caption."""
    return markdown_table(*comparison(df), caption(df))


def to_html(df: pl.DataFrame) -> str:
    """The comparison view as an HTML ``<table id="comparison">``, each ratio on a line of its own
    (the table stays narrow)."""
    headers, rows = comparison(df)
    rows = [[c.replace(" ×", "\n×") for c in row] for row in rows]
    return html_table(headers, rows, caption(df), "comparison")


def markdown_table(headers: list[str], rows: list[list[str]], text: str, labels: int = 2) -> str:
    """A GitHub Markdown table (its first ``labels`` columns left-aligned, the rest right-aligned),
    followed by the caption ``text``."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---"] * labels + ["---:"] * (len(headers) - labels)
    out = [line(headers), "|" + "|".join(align) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n\n" + text + "\n"


def html_table(headers: list[str], rows: list[list[str]], text: str, table_id: str,
               labels: int = 2) -> str:
    """An HTML ``<table id=table_id>`` with the caption ``text``; columns after the first
    ``labels`` are numeric (right-aligned); a newline in a cell breaks its line."""

    def cls(i: int) -> str:
        return ' class="num"' if i >= labels else ""

    def lines(c: str) -> str:
        return "<br>".join(escape(part) for part in c.split("\n"))

    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(headers))
    out = [f'<table id="{table_id}">', f"<caption>{escape(text)}</caption>",
           f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td{cls(j)}>{lines(c)}</td>" for j, c in enumerate(row)) + "</tr>"
            for row in rows]
    out += ["</tbody>", "</table>"]
    return "\n".join(out)
