"""The leaderboard of a suite: tables, plots and provenance rendered from its Parquet results.

:func:`render` writes, into ``out_dir`` (``leaderboards/<suite>/``, next to the Parquet files)::

    leaderboard.md  leaderboard.html  leaderboard.csv  leaderboard.tex
                                                  (md and html add the comparison view, one
                                                  row per model: idbench.leaderboard.comparison,
                                                  where optimisers vary, their d at SGD's
                                                  threshold: ...leaderboard.common_threshold,
                                                  where cells start elsewhere or with SAID,
                                                  their ratios to the start from init:
                                                  ...leaderboard.starting_point,
                                                  and where the suite has a published figure,
                                                  its numbers: ...leaderboard.reference)
    dint_vs_d.png  dint_vs_d.svg                  score against d per cell, by projection
    dint_by_projection.png  dint_by_projection.svg  d_int with its interval, by projection
    dint_ratio_to_dense.png  dint_ratio_to_dense.svg  d_int over dense FPD's beside it, with the
                                                  ratio's interval (where the comparison has
                                                  such a ratio)
    dint_vs_budget.png  dint_vs_budget.svg        d_int against epochs (several budgets only)
    dint_vs_D.png  dint_vs_D.svg                  d_int against D (a model family only)
    psi_vs_d.png  psi_vs_d.svg                    directedness of training against d, one cell
                                                  (runs with training-path metrics only)
    val_vs_epochs.png  val_vs_epochs.svg          validation score against epochs per method
                                                  (cells measured at a single d only)
    provenance.json

All or nothing: every file is written into a hidden temporary folder first and moved into
``out_dir`` only when all of them were written, so a failure leaves ``out_dir`` as it was.
The outputs depend only on the results (the render time is in ``provenance.json`` alone), so
rendering the same Parquet twice gives the same table.

Example::

    measurements, runs = load_results("leaderboards/mnist")
    paths = render(measurements, runs, "leaderboards/mnist")
    print(table(measurements))
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from idbench.atomic import write_atomic
from idbench.errors import IdbenchError
from idbench.leaderboard import common_threshold, comparison, reference, starting_point
from idbench.leaderboard import provenance as prov
from idbench.leaderboard.page import to_html
from idbench.leaderboard.results import check_measurements, check_runs, load_results
from idbench.leaderboard.tables import d_int_name, table, to_csv, to_latex, to_markdown

FORMATS = ("md", "html", "csv", "tex")
# output name -> function of idbench.leaderboard.plots (looked up at call time)
# (dint_ratio_to_dense only where some cell has a dense FPD cell beside it, dint_vs_budget and
# dint_vs_D only where the results hold several budgets or model sizes, psi_vs_d only where the
# runs recorded training-path metrics)
PLOTS = {"dint_vs_d": "accuracy_vs_d", "dint_by_projection": "dint_by_projection",
         "dint_ratio_to_dense": "ratio_to_dense", "dint_vs_budget": "dint_vs_budget",
         "dint_vs_D": "dint_vs_D", "psi_vs_d": "psi_vs_d", "dint_vs_burn_in": "dint_vs_burn_in",
         "val_vs_epochs": "val_vs_epochs"}


def format_table(
    df: pl.DataFrame, fmt: str, provenance: dict[str, Any] | None = None,
    images: dict[str, bytes] | None = None,
) -> str:
    """The leaderboard rows ``df`` (from :func:`table`) as ``md``, ``html``, ``csv`` or ``tex``."""
    if fmt == "md":
        common = common_threshold.to_markdown(df)
        starts = starting_point.to_markdown(df)
        published = reference.to_markdown(df)
        return (to_markdown(df) + "\n" + comparison.to_markdown(df)
                + ("\n" + common if common else "")
                + ("\n" + starts if starts else "")
                + ("\n" + published if published else "")
                + ("\n" + prov.to_markdown(provenance) if provenance else ""))
    if fmt == "html":
        return to_html(df, provenance, images)
    if fmt == "csv":
        return to_csv(df)
    if fmt in ("tex", "latex"):
        return to_latex(df)
    raise IdbenchError(f"unknown leaderboard format {fmt!r}: choose one of md, html, latex, csv")


def render(
    measurements: pl.DataFrame,
    runs: pl.DataFrame | None,
    out_dir: str | os.PathLike[str],
    *,
    formats: tuple[str, ...] | list[str] = FORMATS,
    plots: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the leaderboard files into ``out_dir`` (all or none); returns ``{file name: path}``.

    ``provenance`` adds to (and overrides) what is derived from the rows, e.g. ``suite_hash``.
    """
    formats = ["tex" if f == "latex" else f for f in formats]
    for fmt in formats:
        if fmt not in FORMATS:
            raise IdbenchError(f"unknown leaderboard format {fmt!r}: choose from md, html, latex, csv")
    measurements = check_measurements(measurements)
    runs = check_runs(runs)
    if measurements.height == 0:
        raise IdbenchError("no measured cells in the results: nothing to put on a leaderboard")
    df = table(measurements, runs)
    info = prov.collect(measurements, runs, provenance)

    out_dir = Path(out_dir)
    try:
        files: dict[str, bytes] = {}
        images: dict[str, bytes] = {}
        if plots:  # matplotlib and seaborn load here, not with the package: they take seconds
            from idbench.leaderboard import plots as plotting

            for name, function in PLOTS.items():
                if not plotting.applies(function, df, runs):
                    continue
                fig = plotting.draw(function, df, runs)
                for ext in ("png", "svg"):
                    files[f"{name}.{ext}"] = plotting.render_bytes(fig, ext)
                images[_plot_title(name, df)] = files[f"{name}.png"]
        for fmt in formats:
            text = format_table(df, fmt, info, images)
            files[f"leaderboard.{fmt}"] = text.encode("utf-8")
        stamped = {**info, "rendered_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        files["provenance.json"] = (json.dumps(stamped, indent=2, default=str) + "\n").encode()
        # every file rendered before the first is written: a rendering error leaves nothing
        return {name: write_atomic(out_dir / name, data) for name, data in files.items()}
    except OSError as exc:
        raise IdbenchError(
            f"cannot write the leaderboard to {out_dir}: {exc.strerror or exc}; check the free "
            "space and permissions"
        ) from None


def _plot_title(name: str, df: pl.DataFrame) -> str:
    if name == "dint_vs_d":
        return f"Validation {', '.join(df['metric'].unique().sort())} against d"
    if name == "dint_vs_budget":
        return f"{d_int_name(df)} against the training budget"
    if name == "dint_vs_D":
        return f"{d_int_name(df)} against the number of parameters D"
    if name == "psi_vs_d":
        return "Directedness of the training path (psi) against d"
    if name == "dint_vs_burn_in":
        return f"{d_int_name(df)} against the burn-in before theta0"
    if name == "val_vs_epochs":
        return f"Validation {', '.join(df['metric'].unique().sort())} against epochs, per method"
    if name == "dint_ratio_to_dense":
        return f"{d_int_name(df)} over dense FPD's, with the ratio's interval"
    return f"{d_int_name(df)} by projection"


def render_results(
    results: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> dict[str, Path]:
    """:func:`load_results` then :func:`render` (into the results folder unless ``out_dir``)."""
    measurements, runs = load_results(results)
    results = Path(results)
    folder = results.parent if results.suffix == ".parquet" else results
    return render(measurements, runs, out_dir or folder, **kwargs)


__all__ = ["FORMATS", "format_table", "load_results", "render", "render_results", "table",
           "to_csv", "to_html", "to_latex", "to_markdown"]
