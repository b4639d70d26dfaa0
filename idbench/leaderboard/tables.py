"""The leaderboard table: one row per measured cell, projections of one cell side by side.

:func:`table` turns measurement rows into typed leaderboard rows (CSV keeps these raw values);
:func:`display` turns those into the strings every text format shows:

- d_int: an integer, or ``> d_max`` when no probe up to d_max passed (censored);
- bracket ``[d_lo, d_hi]``: the largest failing and the smallest passing probe (``(0, d_hi]`` when
  d_min passed, ``(d_max, ∞)`` when censored);
- CI: the bootstrap 95% interval of the crossing over seeds, rounded (``∞`` where some
  resamples never cross);
- D/d_int: the compression, with the total number of directions when theta is split into
  compartments (``< D/d_max`` when censored);
- baseline: mean ± std over seeds; runs; wall time as ``3m 12s``.
"""

from __future__ import annotations

import json
import math

import polars as pl

from idbench.leaderboard.results import check_measurements, check_runs, latest_per_cell

# the identity of a cell apart from its projection: rows sharing it sit together
GROUP = ["dataset", "model", "D", "method", "method_options", "compartments"]
SORT = [*GROUP, "projection", "projection_options"]
COLUMNS = [
    "cell", "suite", "model", "dataset", "D", "method", "method_options", "compartments",
    "projection", "projection_options", "metric", "seeds", "baseline_kind", "baseline_mean",
    "baseline_std", "threshold", "threshold_score", "d_int", "censored", "d_max", "d_lo", "d_hi",
    "ci_low", "ci_high", "d_int_total", "d_max_total", "compression", "n_runs", "wall_s",
    "probes",
]


def table(measurements: pl.DataFrame, runs: pl.DataFrame | None = None) -> pl.DataFrame:
    """The leaderboard rows (typed values), sorted by dataset, model, method, then projection.

    ``runs`` is only needed for the total number of directions of per-layer compartments.
    """
    m = latest_per_cell(check_measurements(measurements))
    runs = check_runs(runs)
    totals = {
        (cell, d): total
        for cell, d, total in runs.filter(pl.col("role") == "probe")
        .select("cell", "d", "d_total").drop_nulls().unique().iter_rows()
    }

    def total(cell: str, compartments: str, d: int | None) -> int | None:
        if d is None:
            return None
        if compartments.isdigit():
            return d * int(compartments)
        return totals.get((cell, d))

    rows = m.select("cell", "compartments", "d_int", "d_max").iter_rows()
    d_int_total, d_max_total = zip(*((total(c, k, di), total(c, k, dm)) for c, k, di, dm in rows)) \
        if m.height else ((), ())
    out = m.with_columns(
        pl.Series("d_int_total", d_int_total, dtype=pl.Int64),
        pl.Series("d_max_total", d_max_total, dtype=pl.Int64),
    ).with_columns(
        compression=pl.when(pl.col("censored")).then(None)
        .otherwise(pl.col("D") / pl.col("d_int_total")),
    )
    return out.select(COLUMNS).sort(SORT, nulls_last=True, maintain_order=True)


def groups(df: pl.DataFrame) -> list[int]:
    """Group index of each row: rows of one cell (all but the projection) share an index."""
    index, last, out = -1, None, []
    for key in df.select(GROUP).iter_rows():
        if key != last:
            index, last = index + 1, key
        out.append(index)
    return out


# display strings


def _options(name: str, options: str | None) -> str:
    try:
        parsed = json.loads(options) if options else {}
    except json.JSONDecodeError:
        parsed = options
    if not parsed:
        return name
    if isinstance(parsed, dict):
        return f"{name} ({', '.join(f'{k}={v}' for k, v in sorted(parsed.items()))})"
    return f"{name} ({parsed})"


def _num(x: float) -> str:
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞"
    return str(round(x))


def fmt_d_int(d_int: int | None, censored: bool, d_max: int) -> str:
    if censored:
        return f"> {d_max}"
    return "—" if d_int is None else str(d_int)


def fmt_bracket(d_lo: int | None, d_hi: int | None, censored: bool, d_max: int) -> str:
    if censored:
        return f"({d_max}, ∞)"
    if d_hi is None:
        return "—"
    return f"(0, {d_hi}]" if d_lo is None else f"[{d_lo}, {d_hi}]"


def fmt_ci(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "—"
    return f"[{_num(low)}, {_num(high)}{')' if math.isinf(high) else ']'}"


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


def display(df: pl.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """``(headers, rows, right_aligned)``: the table as strings, in the order of ``df``."""
    name = d_int_name(df)
    metrics = df["metric"].unique().to_list()
    split = any(c != "1" for c in df["compartments"].to_list())
    columns: list[tuple[str, bool, object]] = [
        ("Model", False, lambda r: r["model"]),
        ("Dataset", False, lambda r: r["dataset"]),
        ("D", True, lambda r: str(r["D"])),
        ("Method", False, lambda r: _options(r["method"], r["method_options"])),
        ("Projection", False, lambda r: _options(r["projection"], r["projection_options"])),
    ]
    if split:
        columns.append(("Compartments", True, lambda r: r["compartments"]))
    if len(metrics) > 1:
        columns.append(("Metric", False, lambda r: r["metric"]))
    if name == "d_int":
        columns.append(("Threshold", True, lambda r: f"{r['threshold']:g}"))
    metric = metrics[0] if len(metrics) == 1 else "score"
    columns += [
        (f"Baseline {metric}", True,
         lambda r: fmt_baseline(r["baseline_mean"], r["baseline_std"], r["baseline_kind"])),
        (name, True, lambda r: fmt_d_int(r["d_int"], r["censored"], r["d_max"])),
        ("Bracket", True, lambda r: fmt_bracket(r["d_lo"], r["d_hi"], r["censored"], r["d_max"])),
        ("95% CI", True, lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
        (f"D/{name}", True, fmt_compression),
        ("Runs", True, lambda r: str(r["n_runs"])),
        ("Wall time", True, lambda r: fmt_wall(r["wall_s"])),
    ]
    rows = [[f(r) for _, _, f in columns] for r in df.iter_rows(named=True)]
    return [c[0] for c in columns], rows, [c[1] for c in columns]


def caption(df: pl.DataFrame) -> str:
    """What the columns mean, in one paragraph (the same for every format)."""
    name = d_int_name(df)
    metrics = ", ".join(df["metric"].unique().sort().to_list())
    thresholds = ", ".join(f"{t:g}" for t in df["threshold"].unique().sort().to_list())
    seeds = ", ".join(str(s) for s in df["seeds"].unique().sort().to_list())
    split = any(c != "1" for c in df["compartments"].to_list())
    return (
        f"Score: final-model validation {metrics}. Baseline: mean ± std over {seeds} seeds of "
        f"full-space training (\"global\": a fixed score). Threshold = {thresholds} × baseline. "
        f"{name}: the smallest probed d whose mean score over seeds reaches the threshold "
        f"(\"> d_max\": no probe up to d_max passed)"
        + (", d per compartment" if split else "")
        + ". Bracket: largest failing and smallest passing probe. 95% CI: bootstrap over seeds. "
        f"D/{name}: compression, D over the total number of directions."
    )


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
