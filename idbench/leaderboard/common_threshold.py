"""The optimisers at one threshold: where each cell's curve reaches the score SGD's cell needs.

d_int90 measures each cell against its own baseline, and an optimiser's baseline is the full
network trained by that optimiser: a lower d_int90 can mean a better optimiser in the subspace or
a weaker baseline (a lower threshold). This view separates the two. For every projection x method
measured with several optimisers, it reads each optimiser's stored probes at the threshold score
of the SGD cell of the same model, dataset, budget and compartments (0.9 x SGD's baseline): the d
at which a monotone fit of its mean scores over seeds reaches that score, interpolated in log d
as d_int is, with its 95% interval (:func:`idbench.estimate.estimate` on the same probes: a
Student-t scaled bootstrap over that optimiser's seeds, SGD's threshold score held fixed).
``≤ d``: its smallest probe already reaches it; ``> d``: its largest probe does not.

Example: the optimisers suite (sgd, adam, ngd under Fastfood fpd) gets one row per network::

    | Model | Dataset | Cell          | SGD's threshold | sgd            | adam           | ngd |
    | lenet | fashion | fastfood fpd  | 0.745           | 192 [187, 228] | 214 [...]      | ... |
"""

from __future__ import annotations

import json
import math

import polars as pl

from idbench.leaderboard.comparison import html_table, markdown_table
from idbench.leaderboard.tables import fmt_interval, fmt_num, fmt_value, varies
from idbench.estimate import estimate
from idbench.search import Probe, curve_of

REFERENCE = "sgd"
GROUP = ["dataset", "model", "D", "epochs", "replicate", "projection", "projection_options",
         "method", "method_options", "compartments"]


def applies(df: pl.DataFrame) -> bool:
    """Whether the leaderboard rows ``df`` compare optimisers against an SGD cell."""
    return varies(df, "optimizer") and REFERENCE in df["optimizer"].to_list()


def reach(probes_json: str, threshold_score: float) -> str:
    """The d at which the stored probes' mean score reaches ``threshold_score``, with its CI
    (:func:`~idbench.estimate.estimate` reads the probes' scores, not whether they passed their own
    threshold)."""
    probes = [Probe.from_dict(p) for p in json.loads(probes_json)]
    if not probes:
        return "—"
    found = estimate(curve_of(probes, threshold_score))
    point, low, high = found.d_int, found.ci_low, found.ci_high
    if point is None:
        return f"> {max(p.d for p in probes)}"
    if point <= min(p.d for p in probes):
        return f"≤ {min(p.d for p in probes)}"
    text = fmt_num(point)
    return text if low is None or high is None else f"{text} {fmt_interval(low, high)}"


def view(df: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)``: one row per projection x method with an SGD cell and another optimiser,
    one column per optimiser (empty where none)."""
    optimizers = [REFERENCE] + sorted(set(df["optimizer"].to_list()) - {REFERENCE})
    split = [(c, title) for c, title in (("epochs", "Epochs"), ("replicate", "Replicate"))
             if varies(df, c)]
    headers = ["Model", "Dataset"] + [title for _, title in split] + [
        "Cell", "SGD's threshold", *optimizers]
    rows = []
    for _, part in df.group_by(GROUP, maintain_order=True):
        cells = {r["optimizer"]: r for r in part.to_dicts()}
        reference = cells.get(REFERENCE)
        if reference is None or len(cells) < 2 or math.isnan(reference["threshold_score"]):
            continue
        target = reference["threshold_score"]
        line = [reference["model"], reference["dataset"]]
        line += [fmt_value(reference[c]) for c, _ in split]
        label = f"{reference['projection']} {reference['method']}"
        if reference["compartments"] != "1":
            label += f" ({reference['compartments']} compartments)"
        line += [label, f"{target:.3f}"]
        line += [reach(cells[o]["probes"], target) if o in cells else "" for o in optimizers]
        rows.append(line)
    return headers, rows


def caption(df: pl.DataFrame) -> str:
    return (
        "Optimisers at SGD's threshold: for each projection x method, the d at which each "
        "optimiser's mean validation score over seeds reaches the threshold score of the SGD cell "
        "beside it (the same fraction of SGD's baseline), read off a monotone fit of that "
        "optimiser's own probes and interpolated in log d as d_int is, with its 95% CI: a "
        "Student-t scaled bootstrap over its seeds, SGD's threshold score held fixed (it covers "
        "the optimiser's seeds, not SGD's baseline seeds). It "
        "separates a better optimiser in the subspace from a weaker baseline, which lowers an "
        "optimiser's own threshold. ≤ d: its smallest probe already reaches it; > d: its largest "
        "does not."
    )


def to_markdown(df: pl.DataFrame) -> str:
    """The view as a GitHub Markdown table with its caption; empty when it does not apply."""
    if not applies(df):
        return ""
    headers, rows = view(df)
    return markdown_table(headers, rows, caption(df), labels=headers.index("SGD's threshold"))


def to_html(df: pl.DataFrame) -> str:
    """The view as an HTML ``<table id="common-threshold">``; empty when it does not apply."""
    if not applies(df):
        return ""
    headers, rows = view(df)
    return html_table(headers, rows, caption(df), "common-threshold",
                      labels=headers.index("SGD's threshold"))
