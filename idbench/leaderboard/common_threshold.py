"""The optimisers at one threshold: where each cell's curve reaches the score SGD's cell needs.

d_int90 measures each cell against its own baseline, and an optimiser's baseline is the full
network trained by that optimiser: a lower d_int90 can mean a better optimiser in the subspace or
a weaker baseline (a lower threshold). This view separates the two. For every projection x method
measured with several optimisers, it reads each optimiser's stored probes at the threshold score
of the SGD cell of the same model, dataset, budget and compartments (0.9 x SGD's baseline): the d
at which a monotone fit of its mean scores over seeds reaches that score, interpolated in log d
as d_int is, with its 95% interval (:func:`idbench.estimate.estimate` on the same probes: a
Student-t scaled bootstrap over that optimiser's seeds, SGD's threshold score held fixed). A
cell pooled over independent draws (:mod:`idbench.draws`) is read draw by draw and pooled as its
d_int is (:func:`idbench.estimate.pooled`: the geometric mean, a Student-t interval over the
draws). ``≤ d``: its smallest probe (in some draw) already reaches it; ``> d``: its largest probe
(in some draw) does not. Cells that start elsewhere (a fine-tuning board's theta0 and SAID) are
compared only with the SGD cell of the same start, each start a row of its own.

Example: the optimisers suite (sgd, adam, ngd under Fastfood fpd) gets one row per network::

    | Model | Dataset | Cell          | SGD's threshold | sgd            | adam           | ngd |
    | lenet | fashion | fastfood fpd  | 0.745           | 192 [187, 228] | 214 [...]      | ... |
"""

from __future__ import annotations

import json
import math

import polars as pl

from idbench.leaderboard.comparison import html_table, markdown_table
from idbench.leaderboard.tables import STARTS, fmt_interval, fmt_num, fmt_value, varies
from idbench.estimate import estimate, pooled
from idbench.search import Probe, curve_of

REFERENCE = "sgd"
GROUP = ["dataset", "model", "D", "epochs", "replicate", "projection", "projection_options",
         "method", "method_options", "compartments"]
SPLIT = [("epochs", "Epochs"), ("replicate", "Replicate"), ("theta0", "theta0"), ("said", "SAID")]


def applies(df: pl.DataFrame) -> bool:
    """Whether the leaderboard rows ``df`` compare optimisers against an SGD cell."""
    return varies(df, "optimizer") and REFERENCE in df["optimizer"].to_list()


def reach(probes_json: str, threshold_score: float) -> str:
    """The d at which the stored probes' mean score reaches ``threshold_score``, with its CI
    (:func:`~idbench.estimate.estimate` reads the probes' scores, not whether they passed their own
    threshold); probes of several draws (a ``draw`` key) are read per draw and pooled."""
    stored = json.loads(probes_json)
    if not stored:
        return "—"
    draws: dict[int, list[Probe]] = {}
    for p in stored:
        draws.setdefault(p.get("draw", 0), []).append(Probe.from_dict(p))
    found = [estimate(curve_of(probes, threshold_score)) for probes in draws.values()]
    short = [max(p.d for p in probes) for probes, f in zip(draws.values(), found) if f.d_int is None]
    if short:  # a draw whose largest probe does not reach the score
        return f"> {min(short)}"
    if len(found) > 1:
        point, low, high = pooled([f.d_int for f in found])
    else:
        point, low, high = found[0].d_int, found[0].ci_low, found[0].ci_high
    smallest = [min(p.d for p in probes) for probes in draws.values()]
    at_smallest = [f.d_int <= d for f, d in zip(found, smallest)]  # passed at its first probe
    if all(at_smallest):
        return f"≤ {max(smallest)}"
    interval = "" if low is None or high is None else f" {fmt_interval(low, high)}"
    return f"{'≤ ' if any(at_smallest) else ''}{fmt_num(point)}{interval}"


def view(df: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)``: one row per projection x method with an SGD cell and another optimiser,
    one column per optimiser (empty where none)."""
    optimizers = [REFERENCE] + sorted(set(df["optimizer"].to_list()) - {REFERENCE})
    split = [(c, title) for c, title in SPLIT if c in df.columns and varies(df, c)]
    headers = ["Model", "Dataset"] + [title for _, title in split] + [
        "Cell", "SGD's threshold", *optimizers]
    rows = []
    group = GROUP + [c for c in STARTS if c in df.columns]
    for _, part in df.group_by(group, maintain_order=True):
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
    interval = (
        "a Student-t interval over its independent draws (each draw's probes read at that score, "
        "pooled as d_int is: their geometric mean), SGD's threshold score held fixed (it covers "
        "the optimiser's draws: its seeds, baselines and tunings, not SGD's baseline seeds)"
        if "draw_d_ints" in df.columns else
        "a Student-t scaled bootstrap over its seeds, SGD's threshold score held fixed (it covers "
        "the optimiser's seeds, not SGD's baseline seeds)")
    return (
        "Optimisers at SGD's threshold: for each projection x method, the d at which each "
        "optimiser's mean validation score over seeds reaches the threshold score of the SGD cell "
        "beside it (the same fraction of SGD's baseline), read off a monotone fit of that "
        "optimiser's own probes and interpolated in log d as d_int is, with its 95% CI: "
        f"{interval}. It separates a better optimiser in the subspace from a weaker baseline, "
        "which lowers an optimiser's own threshold. ≤ d: its smallest probe (in some draw) "
        "already reaches it; > d: its largest (in some draw) does not."
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
