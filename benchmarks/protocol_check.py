"""Evidence for the learning-rate protocol: d_int of each protocol against tune-every-probe.

Protocols (MeasureConfig options), each measured on the same cells:

- ``bracket``: tuned at d_ref, re-tuned at the bracket of the crossing, each search after a
  re-tuning restarted on the lattice d_min x 2^k: the default;
- ``bracket-x1.2``: the default re-tuning beyond x1.2 instead of x1.5 (measured under the half
  restart, protocol_check.md);
- ``every-probe``: tuned anew at every probe (``tune_every_probe``), the reference answer;
- ``every-probe-redraw``: the same with another draw of the tuner (``tune_draw: 1``: its grid
  trials elsewhere in their bins, other TPE proposals): how well the reference agrees with
  itself, the floor against which the others' agreement is read;
- ``bracket-redraw``: the default under that other draw of the tuner;
- ``every-probe-4`` and ``every-probe-4-redraw``: the reference with 4 seeds per tuning trial
  (the default 2), under both draws: whether a less noisy trial makes it agree with itself;
- ``bracket-12``, ``every-probe-12`` and ``every-probe-12-redraw``: 12 trials per tuning (the
  default 8): whether trials nearer the stability edge make the protocols agree (``--markdown``'s
  agreement matrix compares each pair).

Protocols measured earlier and whose options were removed from idbench (the rate tuned once and
carried, ``reference``; the half restart; carrying by curvature; a fitted pick of the tuned rate;
another draw of the subspace tuning alone) are recorded, with their tables, in
``benchmarks/protocol_check.md``; their stores are no longer read here.

Cells: FC 784-200-200-10 and LeNet on Fashion-MNIST under dense, sparse, Fastfood and FastJL, and
the known-answer family (idbench.known_answers, first-order: Adam). All protocols of one cell share
one output folder, so the baseline and the tuning at d_ref are trained once; each measurement's
``runs`` and ``wall_s`` still count every run it used (found in the store or trained).

One JSON line per (cell, protocol): d_int, bracket [d_lo, d_hi], 95% CI, runs, wall_s (sum of the
runs' training time), train_steps (sum of their training steps: the cost that the machine's load
does not change; a tuning trial that diverges stops early, so a run is not a fixed unit),
elapsed_s (this process), diverged and retried baseline/probe runs
and diverged tuning trials first trained by this measurement, where the rate was tuned; then one
summary line per cell: each protocol's d_int / every-probe's d_int, whether their brackets
[d_lo, d_hi] overlap (agree within the bisection's resolution), whether their 95% CIs overlap
(where the score curve is flat at the threshold, seed noise moves the crossing by more than a
bisection step, so the bracket test is stricter than the measurement's own resolution), and its
runs, training steps and wall time as a fraction of every-probe's. ``--markdown`` also counts, for
each protocol, the cells where its bracket overlaps the span of the reference's draws (``DRAWS``:
from the smallest d_lo to the largest d_hi of the reference and its redraws), since where the
reference does not reproduce itself, one draw's bracket is a stricter test than its resolution.

    python benchmarks/protocol_check.py --quick          # ~15-30 min on 2 busy CPU cores
    python benchmarks/protocol_check.py                  # 2 epochs, 3 seeds, 8 trials (hours)
    python benchmarks/protocol_check.py --quick --only known
    python benchmarks/protocol_check.py --only fashion --models 'fc[depth=2,width=200]' --epochs 1
    python benchmarks/protocol_check.py --only known --steps 300 --protocols bracket every-probe
    python benchmarks/protocol_check.py --markdown out-*.jsonl  # the table of earlier output
    python benchmarks/protocol_check.py --markdown out-*.jsonl --reference every-probe-4

Dense searches stop at d_max 1024 (FC) and 4096 (LeNet), as in the flagship suite.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch

from idbench.config import MeasureConfig
from idbench.known_answers import FAMILY
from idbench.measurement import measure
from idbench.store import RunStore, cell_runs

PROJECTIONS = ("dense", "sparse", "fastfood", "fastjl")
MODELS = ("fc[depth=2,width=200]", "lenet")
PROTOCOLS: dict[str, dict[str, Any]] = {
    "bracket": {},  # the default (restarts on the lattice)
    # a candidate: re-tune whenever the crossing lies beyond x1.2 of the tuning point (default x1.5)
    "bracket-x1.2": {"lr_retune_factor": 1.2},
    "every-probe": {"tune_every_probe": True},
    # the reference against itself: another draw of the tuner's grid and proposals, so the
    # agreement the protocols above reach can be read against the reference's own reproducibility
    "every-probe-redraw": {"tune_every_probe": True, "tune_draw": 1},
    "bracket-redraw": {"tune_draw": 1},
    # the reference with 4 tuning seeds per trial instead of 2, under both draws: whether less
    # noise per trial makes the reference agree with itself
    "every-probe-4": {"tune_every_probe": True, "tune_seeds": 4},
    "every-probe-4-redraw": {"tune_every_probe": True, "tune_seeds": 4, "tune_draw": 1},
    # 12 trials per tuning instead of 8 (tuning_edge.py: the pick often lies x3 below a diverging
    # rate): whether trials closer to the stability edge make the protocols agree
    "bracket-12": {"tune_trials": 12},
    "every-probe-12": {"tune_every_probe": True, "tune_trials": 12},
    "every-probe-12-redraw": {"tune_every_probe": True, "tune_trials": 12, "tune_draw": 1},
}


# the reference protocols' other draws: a protocol whose bracket overlaps the span of a
# reference's draws' brackets agrees with the reference as far as the reference agrees with itself
DRAWS = {
    "every-probe": ("every-probe-redraw",),
    "every-probe-4": ("every-probe-4-redraw",),
    "every-probe-12": ("every-probe-12-redraw",),
}


# a dense basis is D x d floats: the FC's at d = 20,000 would be 16 GB, so dense searches stop
# where the flagship suite stops them (a crossing above is reported censored, never as d_max)
DENSE_D_MAX = {"fc[depth=2,width=200]": 1024, "lenet": 4096}


def fashion_cells(quick: bool, projections: list[str], models: list[str],
                  epochs: float) -> list[tuple[str, dict[str, Any]]]:
    budget = (dict(steps=60, batch_size=128, seeds=2, tune_trials=3, tune_seeds=1, d_min=16,
                   d_max=2048, resolution=0.15) if quick else
              dict(epochs=epochs, seeds=3, tune_trials=8, tune_seeds=2, d_min=10, d_max=20_000,
                   resolution=0.05))
    cells = []
    for projection in projections:
        for model in models:
            d_max = min(budget["d_max"], DENSE_D_MAX[model]) if projection == "dense" \
                else budget["d_max"]
            cells.append((f"fashion-mnist|{model}|{projection}",
                          dict(model=model, dataset="fashion-mnist", projection=projection,
                               **{**budget, "d_max": d_max})))
    return cells


def known_cells(quick: bool, steps: int,
                problems: list[int] | None) -> list[tuple[str, dict[str, Any]]]:
    chosen = ([FAMILY[i] for i in problems] if problems is not None else
              [p for p in FAMILY if p.D == 1000] if quick else list(FAMILY))  # quick: the toy
    budget = (dict(steps=300, seeds=2, tune_trials=3, tune_seeds=1) if quick else
              dict(steps=steps, seeds=3, tune_trials=8, tune_seeds=2))
    cells = []
    for problem in chosen:
        for projection in PROJECTIONS:
            config = problem.config(projection, optimizer="adam", batch_size=1024,
                                    lr_range=(1e-3, 3.0), **budget)
            cells.append((f"{problem.name}|{projection}|answer={problem.answer}",
                          config.model_dump(exclude_defaults=True)))
    return cells


def cell_folder(cell: str) -> str:
    """The name of a cell's output folder under ``--out``."""
    return cell.replace("|", "_").replace("[", "(").replace("]", ")").replace("=", "-")


def measure_protocol(name: str, options: dict[str, Any], out: Path) -> dict[str, Any]:
    config = MeasureConfig.build(**{**options, **PROTOCOLS[name]})
    start = time.perf_counter()
    row = measure(config, out=out, device="cpu")
    store = RunStore(out)
    table = store.table()
    runs = table.filter(pl.col("cell") == row.cell)  # the runs this measurement trained
    measured = runs.filter(pl.col("role") != "tune")
    used = cell_runs(table, store.measurements().filter(pl.col("cell") == row.cell))
    return {
        "protocol": name, "d_int": row.d_int, "d_lo": row.d_lo, "d_hi": row.d_hi,
        "ci_low": row.ci_low, "ci_high": row.ci_high,
        "censored": row.censored, "runs": row.n_runs, "wall_s": round(row.wall_s, 1),
        "train_steps": int(used["steps"].sum()),
        "elapsed_s": round(time.perf_counter() - start, 1), "tune_at": row.tune_at,
        # baseline and probe runs first trained by this measurement (tuning trials are not
        # retried: a diverging trial is how the tuner learns a rate is too large)
        "diverged": int(measured["diverged"].sum()),
        "retried": int((measured["retries"] > 0).sum()),
        "diverged_trials": int(runs.filter(pl.col("role") == "tune")["diverged"].sum()),
    }


def ci_overlap(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """The two 95% intervals overlap (None where either has none: censored, or under 3 seeds)."""
    if None in (a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"]):
        return None
    return a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]


def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Brackets overlap (censored agrees only with censored)."""
    if a["censored"] or b["censored"]:
        return a["censored"] == b["censored"]
    lo_a, lo_b = a["d_lo"] or 1, b["d_lo"] or 1
    return lo_a <= b["d_hi"] and lo_b <= a["d_hi"]


def within_draws(result: dict[str, Any], draws: list[dict[str, Any]]) -> bool | None:
    """``result``'s bracket overlaps the span of the reference's draws' brackets, from the
    smallest d_lo to the largest d_hi (None with fewer than 2 draws): agreement read against how
    far the reference reproduces itself, where one draw's bracket is narrower than that."""
    if len(draws) < 2:
        return None
    if any(d["censored"] for d in draws):
        return any(agree(result, d) for d in draws)
    span = {"censored": False, "d_lo": min(d["d_lo"] or 1 for d in draws),
            "d_hi": max(d["d_hi"] for d in draws)}
    return agree(result, span)


def against(result: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """How ``result`` compares with the reference protocol's ``ref`` on one cell: d_int ratio,
    brackets and CIs overlapping, runs, wall time and training steps as fractions of ref's."""
    ratio = (result["d_int"] / ref["d_int"]) if result["d_int"] and ref["d_int"] else None
    summary = {
        "d_int_ratio": None if ratio is None else round(ratio, 3),
        "agrees": agree(result, ref),
        "ci_overlap": ci_overlap(result, ref),
        "runs_fraction": round(result["runs"] / ref["runs"], 3),
        "wall_fraction": round(result["wall_s"] / ref["wall_s"], 3) if ref["wall_s"] else math.nan,
    }
    if "train_steps" in result and "train_steps" in ref:  # (recorded from cc8f6f8 on)
        summary["steps_fraction"] = round(result["train_steps"] / ref["train_steps"], 3)
    return summary


def markdown(lines: list[str], reference: str = "every-probe") -> str:
    """A Markdown table of JSON lines this script printed: one row per cell and protocol against
    ``reference`` (the last line of each kind wins, so output of resumed runs can be
    concatenated; the files' own summary lines, always against every-probe, are not read)."""
    results: dict[str, dict[str, Any]] = {}
    for line in filter(str.strip, lines):
        record = json.loads(line)
        if not record.get("summary"):
            results.setdefault(record["cell"], {})[record["protocol"]] = record
    for by_name in results.values():
        if reference in by_name:
            by_name["summary"] = {name: against(r, by_name[reference])
                                  for name, r in by_name.items() if name != reference}
            others = DRAWS.get(reference, ())
            draws = [by_name[x] for x in (reference, *others) if x in by_name]
            for name, s in by_name["summary"].items():
                if name not in others:
                    s["within_draws"] = within_draws(by_name[name], draws)

    def estimate(r: dict[str, Any]) -> str:
        if r["censored"]:
            return "censored"
        ci = "" if r.get("ci_low") is None else f" CI [{r['ci_low']:.0f}, {r['ci_high']:.0f}]"
        return f"{r['d_int']:.0f} [{r['d_lo']}, {r['d_hi']}]{ci}"

    yes_no = {True: "yes", False: "no", None: "n/a"}
    rows = [f"| cell | protocol | d_int [bracket] | {reference} | ratio | brackets overlap | "
            "CIs overlap | runs (fraction) | steps fraction | wall fraction | "
            "retried / diverged (new runs) |",
            "|---|---|---|---|---:|---|---|---:|---:|---:|---:|"]
    for cell, by_name in results.items():
        ref, summary = by_name.get(reference), by_name.get("summary", {})
        for name, r in by_name.items():
            if name in (reference, "summary") or name not in summary or ref is None:
                continue
            s = summary[name]
            rows.append(
                f"| {cell.replace('|', ' / ')} | {name} | {estimate(r)} | {estimate(ref)} | "
                f"{s['d_int_ratio']} | {yes_no[s['agrees']]} | {yes_no[s.get('ci_overlap')]} | "
                f"{r['runs']} of {ref['runs']} ({s['runs_fraction']}) | "
                f"{s.get('steps_fraction', 'n/a')} | {s['wall_fraction']} | "
                f"{r['retried']} / {r['diverged']} |")
    return ("\n".join(rows) + "\n\n" + totals(results, reference) + "\n\n"
            + agreement_matrix(results))


def totals(results: dict[str, dict[str, Any]], reference: str) -> str:
    """One line per protocol over all cells: how often it agrees with ``reference``, and its runs
    against the reference's (the median of the per-cell fractions, and all runs together)."""
    lines = []
    for name in PROTOCOLS:
        pairs = [(by_name[name], by_name["summary"][name], by_name[reference])
                 for by_name in results.values()
                 if name in by_name.get("summary", {}) and reference in by_name]
        if not pairs:
            continue
        costs = [cost_share(pairs, "runs", "runs_fraction", "runs", reference)]
        if all("train_steps" in r and "train_steps" in e for r, _, e in pairs):  # (cc8f6f8 on)
            costs.append(cost_share(pairs, "train_steps", "steps_fraction", "training steps",
                                    reference))
        spans = [s["within_draws"] for _, s, _ in pairs if s.get("within_draws") is not None]
        within = (f", the span of {reference}'s draws on {sum(spans)} of {len(spans)}"
                  if spans else "")
        lines.append(
            f"- {name}, {len(pairs)} cells: brackets overlap on "
            f"{sum(s['agrees'] for _, s, _ in pairs)}{within}, CIs on "
            f"{sum(bool(s.get('ci_overlap')) for _, s, _ in pairs)}; " + "; ".join(costs))
    return "\n".join(lines)


def cost_share(pairs: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]], total: str,
               fraction: str, unit: str, reference: str) -> str:
    """A protocol's cost (``total``: runs or training steps) against the reference's over the
    cells of ``pairs`` (result, summary, the reference's result): the median of the per-cell
    fractions, their range, on how many cells at most half, and all of it together."""
    fractions = sorted(s[fraction] for _, s, _ in pairs)
    together = sum(r[total] for r, _, _ in pairs) / sum(e[total] for _, _, e in pairs)
    return (f"{unit} a median {statistics.median(fractions):.0%} of {reference}'s "
            f"({fractions[0]:.0%} to {fractions[-1]:.0%}; at most half on "
            f"{sum(f <= 0.5 for f in fractions)}), {together:.0%} of all its {unit}")


def agreement_matrix(results: dict[str, dict[str, Any]]) -> str:
    """On how many cells each pair of protocols agrees (brackets overlap), over the cells that
    measured both: every protocol against every other, not only against every-probe, so that a
    protocol's agreement with the reference can be read against the reference's with itself."""
    names = [name for name in PROTOCOLS if any(name in by_name for by_name in results.values())]
    rows = ["| brackets overlap | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names)]
    for a in names:
        cells = []
        for b in names:
            both = [by_name for by_name in results.values() if a in by_name and b in by_name]
            cells.append(f"{sum(agree(c[a], c[b]) for c in both)} of {len(both)}")
        rows.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="60 steps (1/7 epoch), 2 seeds, 3 trials; of the family the toy only")
    parser.add_argument("--only", choices=("fashion", "known"), default=None)
    parser.add_argument("--out", default=None, help="folder for the stores (default: temporary)")
    parser.add_argument("--projections", nargs="+", default=list(PROJECTIONS),
                        choices=PROJECTIONS, help="Fashion-MNIST projections, in this order")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS,
                        help="Fashion-MNIST models, in this order")
    parser.add_argument("--epochs", type=float, default=2.0,
                        help="Fashion-MNIST budget per run without --quick (default 2)")
    parser.add_argument("--steps", type=int, default=2000,
                        help="known-answer family: steps per run without --quick (default 2000)")
    parser.add_argument("--problems", nargs="+", type=int, default=None,
                        choices=range(len(FAMILY)), metavar="I",
                        help="known-answer family: these problems (indices into "
                             "idbench.known_answers.FAMILY, in this order; default all)")
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS,
                        help="protocols to measure (every-probe, the reference, always is)")
    parser.add_argument("--markdown", nargs="+", metavar="JSONL", default=None,
                        help="print a Markdown table of these files of this script's output "
                             "and exit")
    parser.add_argument("--reference", default="every-probe", choices=PROTOCOLS,
                        help="--markdown: the protocol the others are compared with")
    args = parser.parse_args()
    if args.markdown:
        print(markdown([line for path in args.markdown for line in Path(path).read_text()
                        .splitlines()], args.reference))
        return
    torch.set_num_threads(1)
    root = Path(args.out or tempfile.mkdtemp(prefix="protocol-check-"))
    cells = ([] if args.only == "fashion" else
             known_cells(args.quick, args.steps, args.problems)) + \
            ([] if args.only == "known" else
             fashion_cells(args.quick, args.projections, args.models, args.epochs))
    for cell, options in cells:
        out = root / cell_folder(cell)
        results = {name: measure_protocol(name, options, out) for name in PROTOCOLS
                   if name in args.protocols or name == "every-probe"}
        for result in results.values():
            print(json.dumps({"cell": cell, **result}), flush=True)
        summary = {"cell": cell, "summary": True}
        summary.update({name: against(result, results["every-probe"])
                        for name, result in results.items() if name != "every-probe"})
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
