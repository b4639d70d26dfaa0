"""Where the numbers of a leaderboard come from: versions, device, git revisions, suite, date.

``measured_by`` is the revision that measured the cells (the measurement rows'), ``trained_by``
every revision that trained the runs behind them, with its number of runs: a board re-measured
from stored runs names both the code that decided its numbers and the code that trained it. A
revision ending in ``-dirty`` trained from a tree with uncommitted changes.

Everything is taken from the result rows (so rendering the same Parquet twice gives the same page),
then overridden by what the caller passes (e.g. the suite's hash, known only to ``idbench run``).
Values that differ between rows are listed, never silently reduced to one.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from idbench.schema import SCHEMA_VERSION

# the order in which provenance is shown; other keys follow
ORDER = ["suite", "suite_version", "suite_hash", "date", "first_run", "cells", "runs", "device",
         "measured_by", "trained_by", "versions", "schema_version"]


def _one_or_many(values: list[Any]) -> Any:
    values = sorted({v for v in values if v is not None}, key=str)
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def collect(
    measurements: pl.DataFrame, runs: pl.DataFrame, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Provenance of a leaderboard: derived from the rows, updated with ``extra``."""
    versions: dict[str, set[str]] = {}
    for text in measurements["versions"].unique().to_list():
        try:
            parsed = json.loads(text) if text else {}
        except json.JSONDecodeError:
            parsed = {"unparsed": text}
        for package, version in parsed.items():
            versions.setdefault(package, set()).add(str(version))
    stamps = sorted(t for t in measurements["timestamp"].to_list() if t)
    run_stamps = sorted(t for t in runs["timestamp"].to_list() if t)
    out: dict[str, Any] = {
        "suite": _one_or_many(measurements["suite"].to_list()),
        "suite_version": _one_or_many(measurements["suite_version"].to_list()),
        "suite_hash": None,
        "date": stamps[-1] if stamps else None,
        "first_run": (run_stamps or stamps or [None])[0],
        "cells": measurements["cell"].n_unique(),
        "runs": runs["run_key"].n_unique(),  # a run shared by cells is listed under each
        "device": _one_or_many(measurements["device"].to_list()),
        "measured_by": _one_or_many(measurements["git_rev"].to_list()),
        "trained_by": trained_by(runs),
        "versions": {k: ", ".join(sorted(v)) for k, v in sorted(versions.items())},
        "schema_version": SCHEMA_VERSION,
    }
    out.update(extra or {})
    return out


def trained_by(runs: pl.DataFrame) -> dict[str, int]:
    """``{revision: runs}`` over the distinct runs, most runs first (``unknown``: no revision)."""
    distinct = runs.unique("run_key").with_columns(pl.col("git_rev").fill_null("unknown"))
    counts = distinct.group_by("git_rev").len().sort(["len", "git_rev"], descending=[True, False])
    return dict(counts.iter_rows())


def items(provenance: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, text)`` pairs in display order, without empty values."""
    keys = [k for k in ORDER if k in provenance] + [k for k in provenance if k not in ORDER]
    out = []
    for key in keys:
        value = provenance[key]
        if value is None or value == {} or value == []:
            continue
        if isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        out.append((key, text))
    return out


def to_markdown(provenance: dict[str, Any]) -> str:
    return "Provenance: " + "; ".join(f"{k}: {v}" for k, v in items(provenance)) + ".\n"
