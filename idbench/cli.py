"""The ``idbench`` command: a thin layer over the library.

Every command calls one library function; user mistakes (:class:`~idbench.errors.IdbenchError`)
print one line to stderr and exit with status 2, with no traceback.
"""

from __future__ import annotations

import json
import math
import sys

import typer

from idbench.errors import IdbenchError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Measure the intrinsic dimension of neural-network training objectives.",
)


@app.callback()
def _root() -> None:
    """Measure the intrinsic dimension of neural-network training objectives."""



@app.command("ls")
def ls(
    kind: str = typer.Argument(..., help="models | datasets | projections | methods | suites"),
    pattern: str = typer.Argument("*", help="shell-style wildcard, e.g. '*lenet*'"),
) -> None:
    """List what exists: registered models, datasets, projections, methods, or shipped suites."""
    for name in list_names(kind, pattern):
        typer.echo(name)


@app.command()
def measure(
    model: str = typer.Option(..., help="model spec, e.g. 'fc[depth=2,width=200]'"),
    dataset: str = typer.Option(..., help="dataset spec, e.g. fashion-mnist"),
    projection: str = typer.Option("dense", help="dense | sparse | fastfood | fastjl [options]"),
    method: str = typer.Option("fpd", help="fpd | rbd | nes [options]"),
    compartments: str = typer.Option(None, help="number of equal compartments, or 'layer'"),
    seeds: int = typer.Option(3, help="seeds per baseline and per probe"),
    epochs: float = typer.Option(5.0, help="training epochs per run"),
    steps: int = typer.Option(None, help="training steps per run (overrides --epochs)"),
    batch_size: int = typer.Option(128),
    optimizer: str = typer.Option("sgd", help="sgd | adam"),
    threshold: float = typer.Option(0.9, help="fraction of the baseline to reach (0.9: d_int90)"),
    baseline: str = typer.Option("local", help="local | global:<score>"),
    d_min: int = typer.Option(10),
    d_max: int = typer.Option(100_000, help="largest d probed (clamped to D with a warning)"),
    resolution: float = typer.Option(0.05, help="relative resolution of the bisection"),
    grid: str = typer.Option(None, help="fixed grid instead of the search, e.g. 10,50,100"),
    tune_trials: int = typer.Option(8, help="Optuna trials per tuned lr (0: use --lr)"),
    tune_every_probe: bool = typer.Option(False, help="tune the lr at every probed d"),
    lr: float = typer.Option(0.1, help="learning rate when not tuned"),
    out: str = typer.Option("idbench-out", help="output folder (run store, Optuna studies)"),
    storage: str = typer.Option(None, help="Optuna storage: RDB URL or journal file (default: journal in --out)"),
    device: str = typer.Option(None, help="cpu | cuda | cuda:N (default: cuda if available)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
) -> None:
    """Measure d_int90 of one model x dataset x projection x method."""
    from idbench.config import MeasureConfig
    from idbench.measurement import measure as run_measurement
    from idbench.progress import status

    config = MeasureConfig.build(
        model=model, dataset=dataset, projection=projection, method=method,
        compartments=_compartments(compartments), seeds=seeds, epochs=epochs, steps=steps,
        batch_size=batch_size, optimizer=optimizer, threshold=threshold, baseline=baseline,
        d_min=d_min, d_max=d_max, resolution=resolution, grid=_grid(grid),
        tune_trials=tune_trials, tune_every_probe=tune_every_probe, lr=lr,
    )
    with status() as on_event:
        row = run_measurement(config, out=out, storage=storage, device=device, on_event=on_event)
    summary = {
        "model": row.model, "dataset": row.dataset, "projection": row.projection,
        "method": row.method, "D": row.D, "baseline_acc": row.baseline_mean,
        "threshold": row.threshold, "threshold_acc": row.threshold_score, "d_int90": row.d_int,
        "d_lo": row.d_lo, "d_hi": row.d_hi, "d_max": row.d_max, "ci_low": row.ci_low, "ci_high": row.ci_high,
        "censored": row.censored, "n_runs": row.n_runs, "wall_s": round(row.wall_s, 3),
    }
    if as_json:  # strict JSON: a non-finite number (an unbounded interval) becomes null
        typer.echo(json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                               for k, v in summary.items()}))
    else:
        from idbench.progress import print_summary

        print_summary(summary)


@app.command("run")
def run_suite(
    suite: str = typer.Argument(..., help="suite file or shipped suite name, e.g. quickstart"),
    out: str = typer.Option(None, help="run store and studies (default idbench-out/<suite>)"),
    leaderboard_dir: str = typer.Option(None, "--leaderboard", help="default leaderboards/<suite>"),
    only: str = typer.Option(None, help="wildcard over model/dataset/projection/method"),
    dry_run: bool = typer.Option(False, help="print the cells and what is stored; train nothing"),
    resume: bool = typer.Option(False, help="continue a suite whose output folder holds runs"),
    device: str = typer.Option(None, help="cpu | cuda | cuda:N (default: cuda if available)"),
    storage: str = typer.Option(None, help="Optuna storage: RDB URL or journal file (default: journal in --out)"),
    executor: str = typer.Option("local", help="local (this process) | dask (Dask workers)"),
    workers: int = typer.Option(None, help="dask: local workers (default: one per GPU or core)"),
    scheduler: str = typer.Option(None, help="dask: a running scheduler, e.g. tcp://host:8786"),
    cluster_config: str = typer.Option(None, help="dask: YAML of SLURM settings (idbench.slurm)"),
) -> None:
    """Run a benchmark suite and publish its leaderboard."""
    from idbench import progress
    from idbench.runner import plan, run_suite as run

    if dry_run:
        progress.print_plan(plan(suite, out=out, only=only))
        if cluster_config:  # what each SLURM job would run, without submitting it
            from idbench import slurm

            typer.echo(slurm.job_script(slurm.load_cluster_config(cluster_config)))
        return
    options = {"workers": workers, "scheduler": scheduler, "cluster_config": cluster_config}
    if executor.startswith("dask"):
        options["device"] = device  # which devices the local workers own
    with progress.suite_progress() as (on_cell, on_event):
        result = run(suite, out=out, leaderboard_dir=leaderboard_dir, only=only, resume=resume,
                     device=device, storage=storage, executor=executor, executor_options=options,
                     on_event=on_event, on_cell=on_cell)
    for label, reason in result.skipped:
        progress.console.print(f"skipped {label}: {reason}", highlight=False, markup=False)
    typer.echo(result.table)
    progress.console.print(f"leaderboard: {', '.join(str(p) for p in result.files.values())}",
                           highlight=False, markup=False)


@app.command()
def leaderboard(
    results: str = typer.Argument(..., help="results folder or measurements.parquet"),
    fmt: str = typer.Option("md", "--format", help="md | html | latex | csv"),
    plot: str = typer.Option(None, help="also write the accuracy-vs-d plot to this file"),
) -> None:
    """Render a leaderboard table from stored results, without training."""
    import idbench.leaderboard as lb
    from idbench.leaderboard import plots

    measurements, runs = lb.load_results(results)
    df = lb.table(measurements, runs)
    typer.echo(lb.format_table(df, fmt))
    if plot:
        plots.save(plots.accuracy_vs_d(df), plot)


def _compartments(text: str | None) -> int | str | None:
    if text is None or text == "layer":
        return text
    try:
        return int(text)
    except ValueError:
        raise IdbenchError(f"--compartments must be a number or 'layer', got {text!r}") from None


def _grid(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise IdbenchError(f"--grid must be comma-separated integers, got {text!r}") from None


def list_names(kind: str, pattern: str = "*") -> list[str]:
    """Names of one kind of component (``idbench ls``)."""
    import fnmatch

    import idbench.data
    import idbench.methods
    import idbench.models
    import idbench.projections
    from idbench.suites import shipped_suites

    listers = {
        "models": idbench.models.list,
        "datasets": idbench.data.list,
        "projections": idbench.projections.list,
        "methods": idbench.methods.list,
        "suites": lambda p: [n for n in shipped_suites() if fnmatch.fnmatch(n, p)],
    }
    if kind not in listers:
        raise IdbenchError(f"cannot list {kind!r}: choose one of {', '.join(listers)}")
    return listers[kind](pattern)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()  # click handles its own usage errors (status 2) and Ctrl-C
    except IdbenchError as exc:
        typer.echo(f"idbench: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
