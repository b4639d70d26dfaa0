"""Leaderboard plots (seaborn on matplotlib's Agg canvas, no pyplot state).

- :func:`accuracy_vs_d`: the score of every probe against d (log axis), one panel per cell
  (model x dataset x method), one line per projection with the spread over seeds (± 1 sd, clipped
  to the score's range [0, 1]), the
  threshold and the baseline as horizontal lines, d_int as a dotted vertical line.
- :func:`dint_by_projection`: d_int of every cell with its 95% interval, by projection;
  censored cells are an open triangle at d_max pointing right.
- :func:`ratio_to_dense` (where some cell has a dense FPD cell beside it): each projection x
  method's d_int over dense's on the same row of the comparison view, in total directions, with
  the ratio's 95% interval (:func:`idbench.leaderboard.comparison.ratios`), on a log axis with a
  line at 1.
- :func:`dint_vs_budget` (when a cell was measured at several budgets): d_int with its interval
  against epochs per run, one line per cell.
- :func:`dint_vs_D` (when three or more sizes of one model family were measured alike): d_int with
  its interval against D, one line per family (FC networks of one depth over their widths).
- :func:`psi_vs_d` (when the runs recorded training-path metrics): the directedness psi of the
  training path against d for one cell, in z- and in theta-space, with the full-space baseline's
  psi and a random walk's 1 / sqrt(steps) for reference. It reads the run rows.
- :func:`val_vs_epochs` (when cells were measured at a single d, with run histories): the
  validation score against epochs of every method of each network, from the run rows
  (:mod:`idbench.leaderboard.curves`).

The data are the ``probes`` of each measurement row: exactly the per-seed scores the search
decided on. Figures have a fixed size (:func:`accuracy_figsize`, :func:`dint_figsize` at
:data:`DPI`), and :func:`save` writes PNG and SVG without dates, so equal input gives equal files.
"""

from __future__ import annotations

import io
import json
import math
import os
import textwrap
from pathlib import Path

import matplotlib
import polars as pl
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from idbench.atomic import write_atomic
from idbench.leaderboard import comparison, curves
from idbench.leaderboard.tables import GROUP, d_int_name, fmt_d_int, groups
from idbench.registry import format_spec, parse_spec

DPI = 100
FACET_W, FACET_H = 4.8, 3.6  # inches per panel of accuracy_vs_d
MAX_COLS = 3
OPEN_MARGIN = 1.25  # dint_by_projection: factor of log-axis room beyond the extreme finite values
_RC = {"svg.hashsalt": "idbench", "svg.fonttype": "path", "axes.titlesize": 9}


def accuracy_figsize(n_panels: int) -> tuple[float, float]:
    cols = min(MAX_COLS, max(1, n_panels))
    rows = max(1, math.ceil(n_panels / cols))
    return FACET_W * cols, FACET_H * rows


LABEL_LINE = 0.16  # inches a line of a row's wrapped label takes


def dint_figsize(n_cells: int, n_projections: int, label_lines: int = 1) -> tuple[float, float]:
    """A row per cell, tall enough for its projections' markers and its label's lines."""
    per_cell = max(0.32 * max(1, n_projections), LABEL_LINE * label_lines)
    return 8.0, 1.4 + max(1, n_cells) * per_cell


def _style():
    """Seaborn's whitegrid look, applied to figures created (and saved) inside the context."""
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(sns.axes_style("whitegrid"))
    stack.enter_context(sns.plotting_context("notebook", font_scale=0.8))
    stack.enter_context(matplotlib.rc_context(_RC))
    return stack


def _log_x(ax) -> None:
    """Log x axis labelled at 1, 2, 5 x 10^k with plain integers."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log_y(ax) -> None:
    """Log y axis labelled with plain numbers at 1, 1.5, 2, 3, 5, 7 x 10^k (d_int ranges are
    often narrower than a decade)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _palette(df: pl.DataFrame) -> dict[str, tuple]:
    names = sorted(df["projection"].unique().to_list())
    return dict(zip(names, sns.color_palette("colorblind", len(names))))


def _panel_title(row: dict, width: int = 48) -> str:
    """A cell's name in a plot: what tells it apart on its board (where it starts and SAID only
    on a board whose cells differ in them, which keeps those columns)."""
    extra = "" if row["compartments"] == "1" else f", {row['compartments']} compartments"
    epochs = row["epochs"]
    extra += "" if epochs is None else f", {epochs:g} epoch{'' if epochs == 1 else 's'}"
    extra += f", from {row['theta0']}" if row.get("theta0") is not None else ""
    extra += ", SAID" if row.get("said") else ""
    title = f"{row['model']} · {row['dataset']} · {row['method']} ({row['optimizer']}){extra}"
    return "\n".join(textwrap.wrap(title, width))


def _probe_frame(df: pl.DataFrame) -> pl.DataFrame:
    """One row per (cell, d, seed) from the probes JSON of each leaderboard row."""
    records = []
    for row in df.iter_rows(named=True):
        for probe in json.loads(row["probes"] or "[]"):
            for seed, score in enumerate(probe.get("scores") or [probe["mean"]]):
                records.append({"cell": row["cell"], "projection": row["projection"],
                                "d": float(probe["d"]), "seed": seed, "score": score})
    schema = {"cell": pl.String, "projection": pl.String, "d": pl.Float64, "seed": pl.Int64,
              "score": pl.Float64}
    return pl.DataFrame(records, schema=schema)


SCORE_RANGE = (0.0, 1.0)  # every metric idbench reports (accuracy) lies in [0, 1]


def _mean_band(ax, probes: pl.DataFrame, color) -> None:
    """Mean score over seeds against d, with a band of ± 1 sd clipped to the score's range (a
    diverged seed scoring 0 must not draw the band below 0)."""
    stats = (
        probes.group_by("d").agg(mean=pl.col("score").mean(), sd=pl.col("score").std().fill_null(0))
        .sort("d")
    )
    d, mean, sd = (stats[c].to_numpy() for c in ("d", "mean", "sd"))
    low, high = SCORE_RANGE
    ax.fill_between(d, (mean - sd).clip(low, high), (mean + sd).clip(low, high), color=color,
                    alpha=0.2, lw=0)
    ax.plot(d, mean, color=color, marker="o", markersize=4)


def accuracy_vs_d(df: pl.DataFrame) -> Figure:
    """Score against d per cell; ``df`` is :func:`~idbench.leaderboard.tables.table`."""
    panels = [df.filter(pl.Series(groups(df)) == g) for g in range(max(groups(df), default=-1) + 1)]
    palette, name = _palette(df), d_int_name(df)
    probes = _probe_frame(df)
    with _style():
        fig = Figure(figsize=accuracy_figsize(len(panels)), dpi=DPI, layout="constrained")
        cols = min(MAX_COLS, max(1, len(panels)))
        axes = fig.subplots(max(1, math.ceil(len(panels) / cols)), cols, squeeze=False).ravel()
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax, panel in zip(axes, panels):
            data = probes.filter(pl.col("cell").is_in(panel["cell"].to_list()))
            handles = []
            for row in panel.iter_rows(named=True):
                color = palette[row["projection"]]
                mine = data.filter(pl.col("cell") == row["cell"])
                if mine.height:
                    _mean_band(ax, mine, color)
                if row["d_int"] is not None and not row["censored"]:
                    ax.axvline(row["d_int"], color=color, ls=":", lw=1.2)
                label = f"{row['projection']}: {name} {fmt_d_int(row)}"
                handles.append(Line2D([], [], color=color, marker="o", markersize=4, label=label))
            for threshold in sorted(set(panel["threshold_score"].to_list())):
                ax.axhline(threshold, color="0.3", ls="--", lw=1)
            for baseline in sorted(set(panel["baseline_mean"].to_list())):
                ax.axhline(baseline, color="0.6", ls="-.", lw=0.8)
            handles += [Line2D([], [], color="0.3", ls="--", lw=1, label="threshold"),
                        Line2D([], [], color="0.6", ls="-.", lw=0.8, label="baseline")]
            _log_x(ax)
            first = panel.row(0, named=True)
            ax.set_title(_panel_title(first))
            k = first["compartments"]
            per = " per compartment" if k.isdigit() and k != "1" else " in all" if k == "layer" else ""
            ax.set_xlabel(f"d (subspace dimension{per})")
            ax.set_ylabel(f"validation {first['metric']}")
            ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.85)
    return fig


def _finite_span(df: pl.DataFrame) -> tuple[float, float]:
    """The x range of :func:`dint_by_projection`: every finite estimate, interval end and censored
    d_max, widened by a margin on the log axis (an interval open to infinity does not stretch it)."""
    values = []
    for row in df.iter_rows(named=True):
        shown = [row["d_max"]] if row["censored"] else [row["d_int"], row["ci_low"], row["ci_high"]]
        values += [v for v in shown if v is not None and math.isfinite(v) and v > 0]
    if not values:
        return 1.0, 10.0
    return min(values) / OPEN_MARGIN, max(values) * OPEN_MARGIN


def _cell_offsets(df: pl.DataFrame) -> list[float]:
    """The y of each row: its cell's index, the cell's own projections spread evenly around it."""
    group = groups(df)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group):
        members.setdefault(g, []).append(i)
    ys = [0.0] * len(group)
    for g, rows in members.items():
        step = 0.8 / len(rows)
        for k, i in enumerate(rows):
            ys[i] = g - 0.4 + step * (k + 0.5)
    return ys


def dint_by_projection(df: pl.DataFrame) -> Figure:
    """d_int with its 95% interval per cell, one marker per projection. The axis spans
    the finite values: an interval open to infinity runs to the right edge and ends in an arrow."""
    group = groups(df)
    n_cells = max(group, default=-1) + 1
    projections = sorted(df["projection"].unique().to_list())
    palette, name = _palette(df), d_int_name(df)
    left, right = _finite_span(df)
    labels = [""] * n_cells
    for g, row in zip(group, df.iter_rows(named=True)):
        labels[g] = _panel_title(row, width=32)  # wrapped: the axis keeps its width
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    with _style():
        fig = Figure(figsize=dint_figsize(n_cells, len(projections), lines), dpi=DPI,
                     layout="constrained")
        ax = fig.subplots()
        for g, y, row in zip(group, _cell_offsets(df), df.iter_rows(named=True)):
            color = palette[row["projection"]]
            text = fmt_d_int(row)
            if row["censored"]:
                ax.plot([row["d_max"]], [y], marker=">", ms=8, mfc="none", color=color)
                ax.annotate(text, (row["d_max"], y), xytext=(-4, 0), textcoords="offset points",
                            ha="right", va="center", fontsize=7, color=color)
                continue
            x = row["d_int"]
            low, high = row["ci_low"], row["ci_high"]
            if low is not None and high is not None and not math.isnan(low):
                hi = right if math.isinf(high) else high
                ax.plot([min(low, x), max(hi, x)], [y, y], color=color, lw=2, alpha=0.6)
                if math.isinf(high):
                    ax.plot([hi], [y], marker=">", ms=7, color=color, clip_on=False)
            ax.plot([x], [y], marker="o", ms=6, color=color)
            ax.annotate(text, (x, y), xytext=(0, 5), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7, color=color)
        _log_x(ax)
        ax.set_xlim(left, right)
        ax.set_yticks(range(n_cells), labels)
        ax.set_ylim(n_cells - 0.5, -0.5)
        ax.set_xlabel(f"{name} (dot), 95% interval (bar)\n"
                      "▷ no probe up to d_max passed (censored); ▶ an interval open to the right (∞)")
        fig.legend(handles=[Line2D([], [], color=palette[p], marker="o", ls="-", label=p)
                            for p in projections], title="projection", fontsize=7,
                   loc="outside right upper")
    return fig


def has_ratios(df: pl.DataFrame) -> bool:
    """Some cell has a ratio to the dense FPD cell beside it: :func:`ratio_to_dense` applies."""
    return bool(comparison.ratios(df))


def ratio_to_dense(df: pl.DataFrame) -> Figure:
    """Each projection x method's d_int over dense FPD's on the same row of the comparison view
    (total directions), one marker per column with the ratio's 95% interval as a bar, rows as in
    the comparison; a vertical line at 1 (as dense), an open interval ending in an arrow."""
    found = comparison.ratios(df)
    rows = list(dict.fromkeys(row for row, _, _ in found))
    columns = sorted({column for _, column, _ in found})
    colors = dict(zip(columns, sns.color_palette("colorblind", len(columns))))
    ends = [v for _, _, r in found for v in (r.value, r.low, r.high)
            if v is not None and math.isfinite(v) and v > 0] + [1.0]
    left, right = min(ends) / OPEN_MARGIN, max(ends) * OPEN_MARGIN
    with _style():
        fig = Figure(figsize=dint_figsize(len(rows), len(columns)), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        ax.axvline(1.0, color="0.3", ls="--", lw=1)
        step = 0.8 / max(1, len(columns))
        for row, column, r in found:
            y = rows.index(row) - 0.4 + step * (columns.index(column) + 0.5)
            _ratio_point(ax, r, y, right, colors[column])
        _log_x(ax)
        ax.set_xlim(left, right)
        ax.set_yticks(range(len(rows)), ["\n".join(textwrap.wrap(r, 32)) for r in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(f"{d_int_name(df)} / dense FPD's (total directions; dot), 95% interval "
                      "(bar)\nleft of the dashed line: fewer directions than dense; ▶ open to ∞")
        fig.legend(handles=[Line2D([], [], color=colors[c], marker="o", ls="-", label=c)
                            for c in columns], title="projection x method", fontsize=7,
                   loc="outside right upper")
    return fig


def _ratio_point(ax, r: comparison.Ratio, y: float, right: float, color) -> None:
    """One ratio at height ``y``: a dot with its interval as a bar (to ``right`` with an arrow
    where the interval is open)."""
    if r.low is not None and r.high is not None:
        high = right if math.isinf(r.high) else r.high
        ax.plot([r.low, high], [y, y], color=color, lw=2, alpha=0.6)
        if math.isinf(r.high):
            ax.plot([high], [y], marker=">", ms=7, color=color, clip_on=False)
    ax.plot([r.value], [y], marker="o", ms=6, color=color)


# series of the two optional plots: what a line holds fixed
BUDGET_SERIES = ["dataset", "model", "D", "projection", "method", "compartments"]
FAMILY_SERIES = ["dataset", "projection", "method", "compartments", "epochs", "family"]
FAMILY_AXIS = "width"  # the model option a family varies (FC networks of one depth: one line)


def _with_family(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with a ``family`` column: the model spec without its ``width`` option."""
    def family(model: str) -> str:
        name, options = parse_spec(model)
        return format_spec(name, {k: v for k, v in options.items() if k != FAMILY_AXIS})

    return df.with_columns(pl.Series("family", [family(m) for m in df["model"]], pl.String))


def has_budgets(df: pl.DataFrame) -> bool:
    """Some cell was measured at two or more budgets (epochs): :func:`dint_vs_budget` applies."""
    rows = df.filter(pl.col("epochs").is_not_null())
    return rows.height > 0 and rows.group_by(BUDGET_SERIES).agg(
        pl.col("epochs").n_unique()).get_column("epochs").max() >= 2


def has_family(df: pl.DataFrame) -> bool:
    """Three or more sizes D of one model family share everything else: :func:`dint_vs_D` applies."""
    return df.height > 0 and _with_family(df).group_by(FAMILY_SERIES).agg(
        pl.col("D").n_unique()).get_column("D").max() >= 3


def applies(function: str, df: pl.DataFrame, runs: pl.DataFrame | None = None) -> bool:
    """Whether the plot ``function`` of this module has something to show for ``df`` (the
    leaderboard rows) and ``runs`` (the run rows)."""
    if function == "val_vs_epochs":
        return curves.applies(df, runs)
    if function in RUN_PLOTS:
        return _psi_cell(df, runs) is not None
    return {"dint_vs_budget": has_budgets, "dint_vs_D": has_family,
            "dint_vs_burn_in": has_burn_ins,
            "ratio_to_dense": has_ratios}.get(function, lambda _: True)(df)


def draw(function: str, df: pl.DataFrame, runs: pl.DataFrame | None = None) -> Figure:
    """The figure of plot ``function``; the plots of :data:`RUN_PLOTS` also read ``runs``."""
    if function in RUN_PLOTS:
        return globals()[function](df, runs)
    return globals()[function](df)


def _dint_points(ax, part: pl.DataFrame, x: str, color, label: str) -> None:
    """d_int (total directions) of each row against column ``x``, with its 95% CI as an error bar;
    censored rows as an open triangle at d_max pointing up."""
    rows = part.sort(x).to_dicts()
    done = [r for r in rows if not r["censored"] and r["d_int_total"] is not None]
    xs = [r[x] for r in done]
    ys = [r["d_int_total"] for r in done]
    factor = [r["d_int_total"] / r["d_int"] for r in done]
    # no interval (below 3 seeds): no bar; an open one (some resamples never cross): to 10 x d_int
    low = [max(0.0, y - r["ci_low"] * f) if r["ci_low"] is not None else 0.0
           for y, r, f in zip(ys, done, factor)]
    high = [max(0.0, min(r["ci_high"] * f, 10 * y) - y) if r["ci_high"] is not None else 0.0
            for y, r, f in zip(ys, done, factor)]
    ax.errorbar(xs, ys, yerr=[low, high], color=color, marker="o", ms=5, capsize=3, lw=1.2,
                label=label)
    for r in rows:
        if r["censored"]:
            ax.plot([r[x]], [r["d_max_total"] or r["d_max"]], marker="^", ms=8, mfc="none",
                    color=color)


def dint_vs_budget(df: pl.DataFrame) -> Figure:
    """d_int with its 95% CI against the training budget (epochs per run), one line per cell;
    ``df`` is :func:`~idbench.leaderboard.tables.table`. Where the line stops moving beyond its
    CIs, the budget suffices."""
    return _dint_lines(df.filter(pl.col("epochs").is_not_null()), d_int_name(df),
                       series=BUDGET_SERIES, x="epochs", who="model", min_points=1,
                       xlabel="training budget (epochs per run)", against="the training budget")


def dint_vs_D(df: pl.DataFrame) -> Figure:
    """d_int with its 95% CI against the number of parameters D, one line per model family (FC
    networks of one depth over their widths); flat lines: d_int does not grow with D."""
    return _dint_lines(_with_family(df), d_int_name(df), series=FAMILY_SERIES, x="D",
                       who="family", min_points=2, xlabel="D (number of parameters)",
                       against="model size")


def _dint_lines(rows: pl.DataFrame, name: str, *, series: list[str], x: str, who: str,
                min_points: int, xlabel: str, against: str) -> Figure:
    """d_int with its CI against ``x`` on log axes, one line per group of ``series`` (groups with
    fewer than ``min_points`` distinct x values left out), labelled by ``who``."""
    groups = rows.group_by(series, maintain_order=True)
    colors = sns.color_palette("colorblind", max(1, len(rows.select(series).unique())))
    with _style():
        fig = Figure(figsize=(7.0, 4.5), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        for color, (_, part) in zip(colors, groups):
            if part[x].n_unique() < min_points:
                continue
            first = part.row(0, named=True)
            extra = "" if first["compartments"] == "1" else f", {first['compartments']} compartments"
            label = f"{first[who]} · {first['projection']} {first['method']}{extra}"
            _dint_points(ax, part, x, color, label)
        _log_y(ax)
        _log_x(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{name} (total directions), 95% CI")
        ax.set_title(f"{name} against {against}; △ censored (> d_max)")
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    return fig


RUN_PLOTS = ("psi_vs_d", "val_vs_epochs")  # plots drawn from the run rows as well


def _psi_cell(df: pl.DataFrame, runs: pl.DataFrame | None) -> str | None:
    """The cell :func:`psi_vs_d` shows: the first of the leaderboard whose probe runs recorded psi
    at two or more d (None: no such cell)."""
    if runs is None or "z_psi" not in runs.columns:
        return None
    probes = runs.filter((pl.col("role") == "probe") & pl.col("z_psi").is_not_null())
    counts = dict(probes.group_by("cell").agg(pl.col("d").n_unique()).iter_rows())
    return next((cell for cell in df["cell"].to_list() if counts.get(cell, 0) >= 2), None)


def psi_vs_d(df: pl.DataFrame, runs: pl.DataFrame) -> Figure:
    """Directedness psi = displacement / path length of the training path against d for one cell
    (:func:`_psi_cell`): every probe run (points) and the mean over seeds (line), in z-space and in
    theta-space; the full-space baseline's theta-space psi and a random walk's 1 / sqrt(steps) of
    the same number of steps are the references (Tuddenham's thesis, ch. 3)."""
    from idbench.paths import random_walk_psi

    cell = _psi_cell(df, runs)
    row = df.filter(pl.col("cell") == cell).row(0, named=True)
    mine = runs.filter(pl.col("cell") == cell)
    probes = mine.filter((pl.col("role") == "probe") & pl.col("z_psi").is_not_null())
    baselines = mine.filter((pl.col("role") == "baseline") & pl.col("theta_psi").is_not_null())
    colors = dict(zip(("z", "theta"), sns.color_palette("colorblind", 2)))
    with _style():
        fig = Figure(figsize=(7.0, 4.5), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        for space, color in colors.items():
            column = f"{space}_psi"
            ax.scatter(probes["d"].to_numpy(), probes[column].to_numpy(), color=color, s=12,
                       alpha=0.5)
            mean = probes.group_by("d").agg(pl.col(column).mean()).sort("d")
            ax.plot(mean["d"].to_numpy(), mean[column].to_numpy(), color=color, marker="o",
                    markersize=4, label=f"{space}-space (subspace runs; mean over seeds)")
        if baselines.height:
            ax.axhline(baselines["theta_psi"].mean(), color="0.3", ls="-.", lw=1,
                       label="full-space baseline (theta-space)")
        steps = int(probes["steps"].median())
        ax.axhline(random_walk_psi(steps), color="0.6", ls="--", lw=1,
                   label=f"random walk of {steps} steps: 1/sqrt(steps)")
        _log_x(ax)
        _log_y(ax)
        per = "" if row["compartments"] == "1" else " per compartment"
        ax.set_xlabel(f"d (subspace dimension{per})")
        ax.set_ylabel("psi = displacement / path length")
        ax.set_title(f"Directedness of training against d: {row['projection']},\n"
                     + _panel_title(row, width=80).replace("\n", " "))
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    return fig


def val_vs_epochs(df: pl.DataFrame, runs: pl.DataFrame) -> Figure:
    """Validation score against epochs, one panel per network, one line per method
    (:func:`~idbench.leaderboard.curves.curves`): the mean over seeds at every evaluation,
    shaded from the lowest to the highest seed. A line still rising at its last epoch ended
    before its plateau."""
    frame = curves.curves(df, runs)
    panels = frame.select(["dataset", "model"]).unique(maintain_order=True).rows()
    labels = frame["label"].unique(maintain_order=True).to_list()
    colors = dict(zip(labels, sns.color_palette("colorblind", len(labels))))
    metric = df["metric"][0]
    with _style():
        width, height = accuracy_figsize(len(panels))
        rows = math.ceil(len(panels) / min(MAX_COLS, len(panels)))
        fig = Figure(figsize=(width, height + 0.16 * len(labels) * rows), dpi=DPI,
                     layout="constrained")
        cols = min(MAX_COLS, len(panels))
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax, (dataset, model) in zip(axes, panels):
            mine = frame.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
            for (label,), line in mine.group_by("label", maintain_order=True):
                epoch = line["epoch"].to_numpy()
                ax.fill_between(epoch, line["low"].to_numpy(), line["high"].to_numpy(),
                                color=colors[label], alpha=0.2, lw=0)
                seeds = line["seeds"].max()
                ax.plot(epoch, line["mean"].to_numpy(), color=colors[label], marker="o",
                        markersize=3, label=f"{label} ({seeds} seed{'' if seeds == 1 else 's'})")
            ax.set_title("\n".join(textwrap.wrap(f"{model} · {dataset}", 48)))
            ax.set_xlabel("epochs")
            ax.set_ylabel(f"validation {metric}")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7,
                      frameon=False)  # below the axes: rising curves fill every corner
    return fig


def render_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure as PNG or SVG bytes, without creation dates (deterministic for equal input)."""
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    buffer = io.BytesIO()
    with _style():
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, .png or .svg) atomically."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return write_atomic(path, render_bytes(fig, fmt))


# --------------------------------------------------------------------------- burn-in (theta0)

BURN_IN_SERIES = ["dataset", "model", "D", "projection", "method", "compartments", "epochs", "said",
                  "optimizer"]


def _with_burn_in(df: pl.DataFrame) -> pl.DataFrame:
    """The rows from init (length 0) or after a burn-in, with its length ``burn_in`` in the unit
    most of the board's burn-ins are written in (``burn_in_unit``: epochs or steps)."""
    if "theta0" not in df.columns:
        return df.clear().with_columns(burn_in=pl.lit(None, pl.Float64), burn_in_unit=pl.lit(""))
    specs = [parse_spec(text) for text in df["theta0"]]
    units = [("epochs" if "epochs" in o else "steps") for n, o in specs if n == "burn-in"]
    unit = max(set(units), key=units.count) if units else "epochs"
    lengths = [0.0 if name == "init" else (float(o[unit]) if name == "burn-in" and unit in o
                                          else None) for name, o in specs]
    return (df.with_columns(burn_in=pl.Series(lengths, dtype=pl.Float64), burn_in_unit=pl.lit(unit))
            .filter(pl.col("burn_in").is_not_null()))


def has_burn_ins(df: pl.DataFrame) -> bool:
    """Some cell was measured from init and after a burn-in, or after two: :func:`dint_vs_burn_in`
    applies."""
    rows = _with_burn_in(df)
    return rows.height > 0 and rows.group_by(BURN_IN_SERIES).agg(
        pl.col("burn_in").n_unique()).get_column("burn_in").max() >= 2


def dint_vs_burn_in(df: pl.DataFrame) -> Figure:
    """d_int with its 95% CI against the length of the burn-in that gave theta0 (0: init), one
    line per cell otherwise alike (SAID apart): does a short burn-in lower d_int (Larsen et al.
    2022)? The x axis is linear up to the shortest burn-in, logarithmic beyond. Cells trained by
    another optimiser are lines of their own (named by it where the board has several)."""
    rows, name = _with_burn_in(df), d_int_name(df)
    optimisers = rows["optimizer"].n_unique() > 1
    series = rows.group_by(BURN_IN_SERIES, maintain_order=True)
    colors = sns.color_palette("colorblind", max(1, len(rows.select(BURN_IN_SERIES).unique())))
    shortest = rows.filter(pl.col("burn_in") > 0)["burn_in"].min() or 1.0
    with _style():
        fig = Figure(figsize=(7.0, 4.5), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        for color, (_, part) in zip(colors, series):
            if part["burn_in"].n_unique() >= 2:
                first = part.row(0, named=True)
                label = (f"{first['model']} · {first['dataset']} · {first['projection']} "
                         f"{first['method']}{' · SAID' if first['said'] else ''}"
                         f"{' · ' + first['optimizer'] if optimisers else ''}")
                _dint_points(ax, part, "burn_in", color, label)
        _log_y(ax)
        ax.set_xscale("symlog", linthresh=shortest)
        ax.set_xticks(sorted(rows["burn_in"].unique()))  # the lengths measured
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_xlabel(f"burn-in before theta0 ({rows['burn_in_unit'][0]} of full-space training; "
                      "0: init)")
        ax.set_ylabel(f"{name} (total directions), 95% CI")
        ax.set_title(f"{name} against the burn-in; △ censored (> d_max)")
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    return fig


__all__ = ["DPI", "GROUP", "accuracy_figsize", "accuracy_vs_d", "applies", "dint_by_projection",
           "dint_figsize", "dint_vs_D", "dint_vs_budget", "dint_vs_burn_in", "has_budgets",
           "has_burn_ins", "has_family", "has_ratios", "ratio_to_dense", "render_bytes", "save"]
