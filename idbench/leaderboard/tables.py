"""The leaderboard table: one row per measured cell, projections of one cell side by side.

:func:`table` turns measurement rows into typed leaderboard rows (CSV keeps these raw values);
:func:`display` turns those into the strings every text format shows:

- d_int: where a monotone (isotonic) fit of the probes' mean scores over seeds crosses the
  threshold, interpolated linearly in log d (:mod:`idbench.estimate`), rounded (``≤ d_hi`` when
  the smallest probe already passed, ``> d_max`` when the fitted curve never reaches it, with
  ``(k of R draws)`` where only k of a pooled cell's draws do not), with a
  mark for each flag of an ill-defined cell (:data:`FLAGS`; rows from before flags: none);
- bracket ``[d_lo, d_hi]``: the largest failing probe below, and the smallest probe from which
  every larger probe passes (``(0, d_hi]`` when d_min passed, ``(d_max, ∞)`` when censored);
- CI: the 95% interval of the same crossing, a Student-t scaled bootstrap over seeds (each with
  its baseline run), rounded (``∞`` where some
  resamples never cross, ``n/a`` below 3 seeds); what it covers (``ci_covers``) is said once in
  the caption, or marked on each interval (:data:`COVERS_MARKS`) where rows differ;
- D/d_int: the compression, with the total number of directions when theta is split into
  compartments (``< D/d_max`` when censored);
- options readable: floats rounded, a density set by its default rule named (``1/sqrt(D)``);
- baseline: mean ± std over seeds; runs, with diverged and retried runs flagged; wall time as
  ``3m 12s``.
"""

from __future__ import annotations

import json
import math

import polars as pl

from idbench.leaderboard.results import check_measurements, check_runs, latest_per_cell
from idbench.estimate import CI_LEVEL, MIN_CI_UNITS, REPLICATES

# the identity of a cell apart from its projection: rows sharing it sit together
GROUP = ["dataset", "model", "D", "method", "method_options", "compartments", "epochs", "optimizer",
         "tune_draw", "replicate"]
SORT = [*GROUP, "projection", "projection_options"]
# where the runs started and SAID (idbench.theta0): columns of a board whose cells differ in them
STARTS = ["theta0", "said"]
# the mark after d_int of each flag of an ill-defined cell (idbench.estimate.flags), and what it
# means (the caption's sentence)
FLAGS = {
    "threshold-low": ("†", ("the subspace reaches the threshold at d_min or beats its own "
                            "baseline, so d_int says more about the baseline than about the "
                            "subspace")),
    "falls": ("‡", "the mean score falls as d grows by more than its noise"),
    "flat": ("§", ("at the crossing the fitted curve rises less per doubling of d than the "
                   "seeds' noise, so d_int is poorly determined")),
    "untuned": ("¶", ("every trial of a tuning of a learning rate (the baseline's or the "
                      "subspace's) diverged, so the runs at that rate ran at the rate their "
                      "retries found (halving it until a run finished), not at a tuned one")),
}
# where rows' intervals cover different noise (ci_covers), each interval carries one of these
COVERS_MARKS = "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏ"
NOT_RECORDED = "not recorded (measured before it was a column)"
COLUMNS = [
    "cell", "suite", "model", "dataset", "D", "method", "method_options", "compartments",
    "projection", "projection_options", "metric", "seeds", "epochs", "optimizer",
    "tune_draw", "replicate", "baseline_kind", "baseline_mean", "baseline_std", "baseline_scores",
    "threshold", "threshold_score", "d_int", "censored", "d_max", "d_lo", "d_hi", "ci_low",
    "ci_high", "ci_covers", "flags", "d_int_total", "d_max_total", "compression", "n_runs",
    "diverged_runs", "retried_runs", "wall_s", "probes",
]


def table(measurements: pl.DataFrame, runs: pl.DataFrame | None = None) -> pl.DataFrame:
    """The leaderboard rows (typed values), sorted by dataset, model, method, then projection.

    ``runs`` gives the total number of directions per unit of d (the number of compartments when
    d counts directions per compartment) and the diverged and retried runs of each cell.
    """
    m = latest_per_cell(check_measurements(measurements))
    runs = check_runs(runs)
    probes = runs.filter(pl.col("role") == "probe")
    per_d = dict(
        probes.filter(pl.col("d") > 0).select("cell", pl.col("d_total") / pl.col("d"))
        .drop_nulls().unique(subset="cell").iter_rows()
    )
    # flags count the runs a measurement decides on: baselines and probes, not tuning trials
    decided = runs.filter(pl.col("role").is_in(["baseline", "probe"]))
    retried = pl.col("retries") > 0 if "retries" in runs.columns else pl.lit(False)
    counts = decided.group_by("cell").agg(
        diverged_runs=pl.col("diverged").sum().cast(pl.Int64),
        retried_runs=retried.sum().cast(pl.Int64),
    )

    def factor(cell: str, compartments: str) -> float:
        """Directions per unit of d: K for K equal compartments (d per compartment); 1 for one
        compartment and for per-layer compartments (d is the total, split across layers)."""
        if cell in per_d:
            return per_d[cell]
        return float(compartments) if compartments.isdigit() else 1.0

    factors = [factor(c, k) for c, k in m.select("cell", "compartments").iter_rows()]
    out = (
        m.with_columns(pl.Series("factor", factors, dtype=pl.Float64))
        .with_columns(
            d_int_total=pl.col("d_int") * pl.col("factor"),
            d_max_total=(pl.col("d_max") * pl.col("factor")).round().cast(pl.Int64),
        )
        .with_columns(
            compression=pl.when(pl.col("censored")).then(None)
            .otherwise(pl.col("D") / pl.col("d_int_total")),
        )
        .join(counts, on="cell", how="left")
        .with_columns(pl.col("diverged_runs", "retried_runs").fill_null(0))
    )
    out = out.with_columns(pl.col("theta0").fill_null("init"), pl.col("said").fill_null(False))
    starts = [c for c in STARTS if varies(out, c)]
    if "draws" in out.columns and (out["draws"].fill_null(1) > 1).any():
        starts += ["draws", "draw_d_ints"]  # pooled rows (idbench.draws): their ratios need them
    return out.select(COLUMNS + starts).sort([*GROUP, *starts, *SORT[len(GROUP):]],
                                             nulls_last=True, maintain_order=True)


def groups(df: pl.DataFrame) -> list[int]:
    """Group index of each row: rows of one cell (all but the projection) share an index."""
    index, last, out = -1, None, []
    for key in df.select(GROUP + [c for c in STARTS if c in df.columns]).iter_rows():
        if key != last:
            index, last = index + 1, key
        out.append(index)
    return out


# display strings


def fmt_value(value: object) -> str:
    """An option value as a reader wants it: floats to 3 significant digits, booleans lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _option(projection: str, key: str, value: object, options: dict, D: int, values: bool) -> str:
    """``key=value``, naming the rule when a density is the one its projection derives (with its
    rounded value unless ``values`` is false: the rule alone names the same choice for every D)."""
    if key == "density" and isinstance(value, float):
        sparse_default = projection in ("sparse", "kron_sparse")
        if sparse_default and math.isclose(value, 1 / math.sqrt(D), rel_tol=1e-9):
            return f"density=1/sqrt(D)≈{value:.2g}" if values else "density=1/sqrt(D)"
        if projection == "fastjl" and "nnz_per_row" in options:
            return "density=nnz_per_row/n"  # n: d rounded up to a power of two (varies with d)
        return f"density≈{value:.2g}"
    return f"{key}={fmt_value(value)}"


def fmt_options(name: str, options: str | None, D: int, *, values: bool = True) -> str:
    """``name (k=v, ...)`` with readable values (see :func:`_option`)."""
    try:
        parsed = json.loads(options) if options else {}
    except json.JSONDecodeError:
        parsed = options
    if not parsed:
        return name
    if isinstance(parsed, dict):
        shown = ", ".join(_option(name, k, v, parsed, D, values) for k, v in sorted(parsed.items()))
        return f"{name} ({shown})"
    return f"{name} ({parsed})"


def fmt_num(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞"
    return str(round(x))


def fmt_d_int(row: dict) -> str:
    """The estimate, rounded: ``> d_max`` when censored (``> d_max (k of R draws)`` where only k of
    a pooled cell's R draws never cross: one such draw censors the cell), ``≤ d_hi`` when d_min
    already passed (without a bracket, where the largest probes fail, the fitted crossing)."""
    if row["censored"]:
        return f"> {row['d_max']}" + censored_by_some(row)
    if row["d_int"] is None:
        return "—"
    return f"≤ {row['d_hi']}" if at_d_min(row) else fmt_num(row["d_int"])


def at_d_min(row: dict) -> bool:
    """Whether the cell passes at its smallest d (in some draw): its d_int is an upper bound. A
    cell without a bracket (its fitted curve crosses, its largest probes fail) does not."""
    return not row["censored"] and row["d_lo"] is None and row["d_hi"] is not None


def censored_by_some(row: dict) -> str:
    """`` (k of R draws)`` for a censored pooled row that only k of its R draws censor, else
    empty (a row of one measurement, or every draw censored)."""
    draws = json.loads(row.get("draw_d_ints") or "[]")
    censored = sum(d is None for d in draws)
    partly = row["censored"] and 0 < censored < len(draws)
    return f" ({censored} of {len(draws)} draws)" if partly else ""


def flag_names(row: dict) -> list[str]:
    """The row's flags (:data:`FLAGS`), in their stored order; none for rows from before flags."""
    return [f for f in (row.get("flags") or "").split(",") if f]


def fmt_flags(row: dict) -> str:
    """The marks of the row's flags, e.g. ``†§`` (empty: none)."""
    return "".join(FLAGS[f][0] if f in FLAGS else f for f in flag_names(row))


def fmt_d_int_flagged(row: dict) -> str:
    """:func:`fmt_d_int` followed by the marks of the row's flags."""
    marks = fmt_flags(row)
    return fmt_d_int(row) + (f" {marks}" if marks else "")


def covers_of(row: dict) -> str:
    """What the row's interval covers (``ci_covers``), in words."""
    return row.get("ci_covers") or NOT_RECORDED


def covers_values(df: pl.DataFrame) -> list[str]:
    """What the shown intervals cover, each once (rows without an interval left out)."""
    shown = df.filter(~pl.col("censored") & pl.Series([has_interval(r) for r in df.to_dicts()]))
    return sorted({covers_of(r) for r in shown.select("ci_covers").iter_rows(named=True)})


def covers_legend(df: pl.DataFrame) -> dict[str, str]:
    """``{what an interval covers: its mark}`` where the rows differ (empty where they agree)."""
    values = covers_values(df)
    return {} if len(values) < 2 else dict(zip(values, COVERS_MARKS))


def fmt_bracket(d_lo: int | None, d_hi: int | None, censored: bool, d_max: int) -> str:
    if censored:
        return f"({d_max}, ∞)"
    if d_hi is None:
        return "—"
    return f"(0, {d_hi}]" if d_lo is None else f"[{d_lo}, {d_hi}]"


def has_interval(row: dict) -> bool:
    """Whether the row has an interval: pooled over several draws (:mod:`idbench.draws`), or over
    at least :data:`MIN_CI_UNITS` seeds."""
    return (row.get("draws") or 1) > 1 or row["seeds"] >= MIN_CI_UNITS


def fmt_ci(row: dict, legend: dict[str, str] | None = None) -> str:
    """``[low, high]``; ``n/a`` without an interval (:func:`has_interval`); ``—`` when censored;
    followed by the mark of what it covers where ``legend`` (:func:`covers_legend`) has one."""
    if row["censored"]:
        return "—"
    if not has_interval(row):
        return "n/a"
    mark = (legend or {}).get(covers_of(row), "")
    return fmt_interval(row["ci_low"], row["ci_high"]) + (f" {mark}" if mark else "")


def fmt_interval(low: float | None, high: float | None) -> str:
    """``[low, high]`` rounded, ``[low, ∞)`` when open; ``—`` when missing."""
    if low is None or high is None:
        return "—"
    return f"[{fmt_num(low)}, {fmt_num(high)}{')' if math.isinf(high) else ']'}"


def fmt_ratio(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def fmt_compression(row: dict) -> str:
    if row["censored"]:
        total = row["d_max_total"]
        return f"< {fmt_ratio(row['D'] / total)}" if total else "—"
    return fmt_ratio(row["compression"])


def fmt_baseline(mean: float, std: float, kind: str) -> str:
    if kind.startswith("global"):
        return f"{mean:.3f} (global)"
    return f"{mean:.3f} ± {std:.3f}"


def fmt_runs(row: dict) -> str:
    """The number of runs, with the diverged and retried ones among baselines and probes."""
    flags = [f"{row[c]} {w}" for c, w in (("diverged_runs", "diverged"), ("retried_runs", "retried"))
             if row[c]]
    return str(row["n_runs"]) + (f" ({', '.join(flags)})" if flags else "")


def fmt_wall(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``3m 12s``, ``2h 05m``, ``1d 03h``."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def d_int_name(df: pl.DataFrame) -> str:
    """``d_int90`` when every row has threshold 0.9 (``d_int`` when thresholds differ)."""
    thresholds = df["threshold"].unique().to_list()
    return f"d_int{thresholds[0] * 100:g}" if len(thresholds) == 1 else "d_int"


def varies(df: pl.DataFrame, column: str) -> bool:
    return df[column].n_unique() > 1


Column = tuple[str, bool, object]  # header, right-aligned, the function of a row giving its text


def _choice_columns(df: pl.DataFrame) -> list[Column]:
    """The columns of the choices that vary between rows (one value: said by no column)."""
    columns: list[Column] = []
    if any(c != "1" for c in df["compartments"].to_list()):
        columns.append(("Compartments", True, lambda r: r["compartments"]))
    if varies(df, "epochs"):
        columns.append(("Epochs", True, lambda r: fmt_value(r["epochs"])))
    if varies(df, "optimizer"):
        columns.append(("Optimiser", False, lambda r: r["optimizer"]))
    if varies(df, "tune_draw"):
        columns.append(("Tuner draw", True, lambda r: str(r["tune_draw"])))
    if varies(df, "replicate"):
        columns.append(("Replicate", True, lambda r: str(r["replicate"])))
    if "theta0" in df.columns:
        columns.append(("theta0", False, lambda r: r["theta0"]))
    if "said" in df.columns:
        columns.append(("SAID", False, lambda r: "yes" if r["said"] else "no"))
    if df["metric"].n_unique() > 1:
        columns.append(("Metric", False, lambda r: r["metric"]))
    if d_int_name(df) == "d_int":
        columns.append(("Threshold", True, lambda r: f"{r['threshold']:g}"))
    return columns


def display(df: pl.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """``(headers, rows, right_aligned)``: the table as strings, in the order of ``df``."""
    name = d_int_name(df)
    metrics = df["metric"].unique().to_list()
    legend = covers_legend(df)
    columns: list[Column] = [
        ("Model", False, lambda r: r["model"]),
        ("Dataset", False, lambda r: r["dataset"]),
        ("D", True, lambda r: str(r["D"])),
        ("Method", False, lambda r: fmt_options(r["method"], r["method_options"], r["D"])),
        ("Projection", False,
         lambda r: fmt_options(r["projection"], r["projection_options"], r["D"])),
        *_choice_columns(df),
    ]
    metric = metrics[0] if len(metrics) == 1 else "score"
    columns += [
        (f"Baseline {metric}", True,
         lambda r: fmt_baseline(r["baseline_mean"], r["baseline_std"], r["baseline_kind"])),
        (name, True, fmt_d_int_flagged),
        ("Bracket", True, lambda r: fmt_bracket(r["d_lo"], r["d_hi"], r["censored"], r["d_max"])),
        (f"{CI_LEVEL:.0%} CI", True, lambda r: fmt_ci(r, legend)),
        (f"D/{name}", True, fmt_compression),
        ("Runs", True, fmt_runs),
        ("Wall time", True, lambda r: fmt_wall(r["wall_s"])),
    ]
    rows = [[f(r) for _, _, f in columns] for r in df.iter_rows(named=True)]
    return [c[0] for c in columns], rows, [c[1] for c in columns]


def caption(df: pl.DataFrame) -> str:
    """What the columns mean, in one paragraph (the same for every format)."""
    name = d_int_name(df)
    metrics = ", ".join(df["metric"].unique().sort().to_list())
    thresholds = ", ".join(f"{t:g}" for t in df["threshold"].unique().sort().to_list())
    seeds = ", ".join(str(s) for s in df["seeds"].unique().sort().to_list()) + " seeds"
    if "draws" in df.columns:  # pooled rows: every draw's seeds
        draws = ", ".join(str(d) for d in df["draws"].unique().sort().to_list())
        seeds = f"the seeds of all {draws} draws ({seeds.removesuffix(' seeds')} each)"
    compartments = set(df["compartments"].to_list())
    split = any(c.isdigit() and c != "1" for c in compartments)
    return (
        f"Score: final-model validation {metrics}. {budget_caption(df)}"
        f"Baseline: mean ± std over {seeds} of "
        f"full-space training (\"global\": a fixed score). Threshold = {thresholds} × baseline. "
        f"{name}: the estimate, where a monotone (isotonic) fit of the probes' mean scores over "
        "seeds crosses the threshold, interpolated linearly in log d, rounded (\"≤ d\": the "
        "smallest probe d already passed; \"> d_max\": the fitted curve never reaches the "
        "threshold up to d_max" + (
            "; \"> d_max (k of R draws)\": only k of the R draws pooled never reach it, and "
            "one such draw censors the cell"
            if any(map(censored_by_some, df.iter_rows(named=True))) else "")
        + ")"
        + (", in directions per compartment for K equal compartments" if split else "")
        + ". Bracket [d_lo, d_hi]: the largest failing probe below, and the smallest probe from "
        f"which every larger probe passed (the probes around {name}). " + interval_caption(df)
        + flags_caption(df)
        + f" D/{name}: compression, D over the total number of directions at {name}. "
        + ("Compartments layer: one per layer (its weight and bias), each with its own basis; d "
           "counts all directions, split equally across the layers, a layer smaller than its "
           "share training all of its own and the rest shared again. " if "layer" in compartments
           else "")
        + "density=1/sqrt(D): the sparse (and kron_sparse) default; fastjl's density is "
        "nnz_per_row/n, n = d rounded up to a power of two. Runs: training runs used (baselines, probes, lr tuning), with "
        "diverged (NaN/inf at every rate, scored 0) and retried (diverged or collapsed to chance "
        "at first, rerun at half the rate; one still at chance after every retry keeps its first "
        "score) baseline and probe runs flagged."
    )


def budget_caption(df: pl.DataFrame) -> str:
    """The training budget, said once where every row has the same (else the Epochs column's)."""
    every = "for every run of a cell (baseline, lr tuning and probes alike). "
    epochs = df["epochs"].unique().to_list()
    if len(epochs) > 1:
        return f"Budget: the Epochs column, {every}"
    if epochs[0] is None:  # a budget in steps, not epochs
        return ""
    n = fmt_value(epochs[0])
    return f"Budget: {n} epoch{'' if n == '1' else 's'} per run, {every}"


def interval_caption(df: pl.DataFrame) -> str:
    """What the interval is and what it covers: said once where every row's interval covers the
    same noise, else one mark per kind (:func:`covers_legend`)."""
    values, legend = covers_values(df), covers_legend(df)
    if legend:
        covers = "What it covers differs between rows, marked on each interval: " + "; ".join(
            f"{mark} {what}" for what, mark in legend.items()) + "."
    else:
        covers = f"It covers: {values[0]}." if values else ""
    if "draw_d_ints" in df.columns:  # pooled over independent draws (idbench.draws)
        return (f"{CI_LEVEL:.0%} CI: the interval of {d_int_name(df)} over R independent draws "
                "of the whole measurement (each its own seeds, baseline, tunings and search; "
                f"{d_int_name(df)} is the geometric mean of theirs), a Student-t interval on "
                f"their log d at R - 1 degrees of freedom; n/a where a draw is censored; the bracket "
                f"spans the draws' brackets. {covers}")
    return (
        f"{CI_LEVEL:.0%} CI: the interval of {d_int_name(df)}, a bootstrap over seeds (each seed "
        "with its baseline run; "
        f"{REPLICATES:,} resamples, each refitted), Student-t scaled: {d_int_name(df)} × "
        "exp(∓ t s), s the bootstrap's standard error of log d_int on each side and t Student's "
        f"quantile at n - 1 degrees of freedom for n seeds; n/a below {MIN_CI_UNITS} seeds, ∞ when "
        f"some resamples never cross. {covers}"
    )


def flags_caption(df: pl.DataFrame) -> str:
    """One sentence per flag, where some row was checked for flags (empty for older rows)."""
    if df["flags"].drop_nulls().len() == 0:
        return ""
    return " Flags, marked after d_int: " + "; ".join(
        f"{mark} {flag}: {meaning}" for flag, (mark, meaning) in FLAGS.items()) + "."


# formats


def to_markdown(df: pl.DataFrame) -> str:
    """A GitHub Markdown table, followed by its caption."""
    headers, rows, right = display(df)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(headers), "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n\n" + caption(df) + "\n"


def to_csv(df: pl.DataFrame) -> str:
    """The typed leaderboard rows of :func:`table` as CSV (raw numbers, empty for null), without
    the probes JSON (it is in measurements.parquet)."""
    return df.drop("probes", strict=False).write_csv()


_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "∞": r"$\infty$", "—": "--", "×": r"$\times$", "<": r"$<$", ">": r"$>$",
    "†": r"\dag{}", "‡": r"\ddag{}", "§": r"\S{}", "≈": r"$\approx$", "∓": r"$\mp$",
    "≤": r"$\leq$",
    **{mark: r"\textsuperscript{" + letter + "}" for mark, letter in zip(COVERS_MARKS,
                                                                        "abcdefghijk")},
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(df: pl.DataFrame) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    headers, rows, right = display(df)
    group = groups(df)
    body = []
    for i, row in enumerate(rows):
        if i and group[i] != group[i - 1]:
            body.append(r"\midrule")
        cells = [latex_escape(c) for c in row]
        lead = "{}" if cells[0].startswith("[") else ""  # not an optional argument of \\
        body.append(lead + " & ".join(cells) + r" \\")
    return "\n".join([
        "% idbench leaderboard; needs \\usepackage{booktabs}",
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{" + "".join("r" if r else "l" for r in right) + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in headers) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{" + latex_escape(caption(df)) + "}",
        r"\end{table}",
        "",
    ])
