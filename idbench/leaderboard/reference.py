"""A published figure beside idbench's: the reference numbers a suite reproduces.

A shipped suite may come with its paper's numbers in a CSV file next to it,
``<suite>.reference.csv`` (``#`` lines are comments), one row per network and method::

    source,dataset,model,method,basis,d,mean,sd
    "Gressmann et al. 2020, Fig. B.6",fashion-mnist,"fc[depth=1,width=128]",sgd,,,87.32,0.21
    "Gressmann et al. 2020, Fig. B.6",fashion-mnist,"fc[depth=1,width=128]",rbd,gaussian,250,85.65,0.2

``mean`` and ``sd``: the published score in percent (mean and standard deviation over its runs);
``d`` empty and method ``sgd``: the full-space baseline. The board of that suite then has one row
per reference row and matching idbench cell (same dataset name, model spec and method; each
projection, dataset option and budget of it, the full-space row once per dataset and budget): the
published score beside idbench's score at that d (the cell's baseline for the full-space row), as
mean ± sd over seeds, and the difference in points, marked where it exceeds twice the two spreads
combined.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

from idbench.leaderboard.comparison import html_table, markdown_table
from idbench.leaderboard.tables import fmt_value
from idbench.registry import parse_spec
from idbench.suites import SUITES_DIR

HEADERS = ["Model", "Data", "Method", "Epochs", "Published", "idbench", "Δ (points)"]
SCHEMA = {"source": pl.String, "dataset": pl.String, "model": pl.String, "method": pl.String,
          "basis": pl.String, "d": pl.Int64, "mean": pl.Float64, "sd": pl.Float64}


def reference_file(suite: str) -> Path:
    """Where the reference numbers of the shipped suite named ``suite`` are kept."""
    return SUITES_DIR / f"{suite}.reference.csv"


def load(df: pl.DataFrame) -> pl.DataFrame | None:
    """The reference rows of the suite of the board rows ``df`` (None: it has none)."""
    suites = [s for s in df["suite"].unique().to_list() if s]
    if len(suites) != 1 or not reference_file(suites[0]).is_file():
        return None
    return pl.read_csv(reference_file(suites[0]), comment_prefix="#", schema=SCHEMA)


def _score(row: dict, ref: dict) -> tuple[float, float] | None:
    """idbench's score of board row ``row`` for reference row ``ref`` in percent (mean, sd):
    the baseline's for the full-space row, else the probe at the reference's d."""
    if ref["d"] is None:
        return 100 * row["baseline_mean"], 100 * row["baseline_std"]
    probe = next((p for p in json.loads(row["probes"] or "[]") if p["d"] == ref["d"]), None)
    return None if probe is None else (100 * probe["mean"], 100 * probe["std"])


def view(df: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)``: one row per reference row and matching cell (see the module doc)."""
    reference = load(df)
    rows: list[list[str]] = []
    for ref in [] if reference is None else reference.iter_rows(named=True):
        full = ref["d"] is None
        matches = [r for r in df.iter_rows(named=True)
                   if parse_spec(r["dataset"])[0] == ref["dataset"] and r["model"] == ref["model"]
                   and (full or r["method"] == ref["method"])]
        if full:  # one baseline row per dataset and budget
            firsts: dict[tuple, dict] = {}
            for r in matches:
                firsts.setdefault((r["dataset"], r["epochs"]), r)
            matches = list(firsts.values())
        for row in matches:
            score = _score(row, ref)
            if score is None:
                continue
            delta = score[0] - ref["mean"]
            beyond = abs(delta) > 2 * math.hypot(score[1], ref["sd"])
            basis = "full space" if full else row["projection"]
            published = "full space" if full else f"{ref['basis']}, d = {ref['d']}"
            rows.append([ref["model"], row["dataset"], ref["method"], fmt_value(row["epochs"]),
                         f"{ref['mean']:.2f} ± {ref['sd']:.2f} ({published})",
                         f"{score[0]:.2f} ± {score[1]:.2f} ({basis})",
                         f"{delta:+.2f}{' *' if beyond else ''}"])
    return HEADERS, rows


def caption(df: pl.DataFrame) -> str:
    reference = load(df)
    sources = sorted(set(reference["source"].to_list())) if reference is not None else []
    return (
        f"Beside the published figure ({'; '.join(sources)}): validation {df['metric'][0]} in "
        "percent, mean ± sd over seeds; idbench's is the final validation score of each seed's "
        "run at the published d (the cell's full-space baseline for the full-space row), "
        "trained for Epochs. Δ: idbench less the published mean; * where it exceeds twice the "
        "two spreads combined (2 sqrt(sd² + sd²))."
    )


def applies(df: pl.DataFrame) -> bool:
    """Whether the board rows ``df`` have reference numbers with a matching cell."""
    return bool(view(df)[1])


def to_markdown(df: pl.DataFrame) -> str:
    """The view as a GitHub Markdown table with its caption; empty when it does not apply."""
    headers, rows = view(df)
    return markdown_table(headers, rows, caption(df)) if rows else ""


def to_html(df: pl.DataFrame) -> str:
    """The view as an HTML ``<table id="reference">``; empty when it does not apply."""
    headers, rows = view(df)
    return html_table(headers, rows, caption(df), "reference") if rows else ""
