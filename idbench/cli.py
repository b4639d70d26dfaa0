"""The ``idbench`` command: a thin layer over the library.

Every command calls one library function. What the terminal shows:

- a user mistake (:class:`~idbench.errors.IdbenchError`, or a flag click cannot parse) prints one
  line ``idbench: error: ...`` to stderr and exits with status 2, with no traceback;
- Ctrl-C prints one line saying what is stored and the exact command that continues, and exits
  with status 130;
- a warning prints one line ``idbench: warning: ...``, once.

The flags of ``idbench measure`` are generated from :class:`~idbench.config.MeasureConfig` (type,
help and default of each field, written once there), so every measurement option is a flag, as it
is a key of a suite's ``defaults``.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import math
import shlex
import sys
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Iterator

import typer

from idbench.config import MeasureConfig
from idbench.errors import IdbenchError

SPEC_HELP = (
    "Components are specs: a name with options in brackets, e.g. --model 'fc[depth=2,width=200]' "
    "--projection 'sparse[density=0.01]' (quote them for the shell); `idbench ls models` (datasets, "
    "projections, methods) lists the names."
)
# rich_markup_mode=None: help is plain text, so "[depth=2,width=200]" is shown, not eaten as markup
app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Measure the intrinsic dimension of neural-network training objectives.",
)
# The argv of this invocation (without the program name), for the line printed on Ctrl-C.
_ARGV: list[str] = []


SUITE_FORMAT_HELP = ("The suite file format (YAML: name, version, defaults, grids) is documented "
                     "in `python -m pydoc idbench.suites`; `idbench ls suites` lists the shipped "
                     "suites, whose files are examples.")


def version_text() -> str:
    """``idbench <version>`` of the installed distribution (the package's own version when it
    runs from a source tree without being installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"idbench {version('idbench')}"
    except PackageNotFoundError:
        import idbench

        return f"idbench {idbench.__version__}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print idbench's version and exit"),
) -> None:
    """Measure the intrinsic dimension of neural-network training objectives."""


@app.command("ls")
def ls(
    kind: str = typer.Argument(..., help="models | datasets | projections | methods | suites"),
    pattern: str = typer.Argument("*", help="shell-style wildcard, e.g. '*lenet*'"),
) -> None:
    """List what exists: registered models, datasets, projections, methods, or shipped suites,
    each with what it is and the options its spec takes (type = default), e.g.
    sparse[density=0.01]."""
    entries = list_entries(kind, pattern)
    if not entries:
        raise IdbenchError(f"no {kind} match {pattern!r}; `idbench ls {kind}` lists them all")
    for entry in entries:
        typer.echo(f"{entry.name}  {entry.summary}".rstrip())
        options = [f"{o.name}: {o.type}" + (f" = {o.default}" if o.default else "")
                   for o in entry.options]
        if entry.takes_more:
            options.append("any other option goes on to the component")
        if options:
            typer.echo(f"    options: {'; '.join(options)}")


# --------------------------------------------------------------------------- measure: its flags

# the component specs first, in this order; then every other option in MeasureConfig's order
_SPECS = ("model", "dataset", "projection", "method")
_SPEC_METAVAR = "SPEC"


def _plain(annotation: Any) -> tuple[Any, bool]:
    """``(annotation without None, whether None is allowed)``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), optional
    return annotation, False


def _metavar(name: str, annotation: Any) -> str:
    """How a flag's value is written, e.g. ``INT``, ``sgd|adam``, ``D,D,...``, ``LOW,HIGH``."""
    if name in _SPECS:
        return _SPEC_METAVAR
    plain, _ = _plain(annotation)
    origin, args = typing.get_origin(plain), typing.get_args(plain)
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if origin is typing.Union:
        return "|".join(_metavar(name, a) for a in args)
    if origin is tuple:
        item = "INT" if args and args[0] is int else "NUMBER"
        return f"{item},{item},..." if len(args) == 2 and args[1] is Ellipsis else ",".join(
            ("LOW", "HIGH") if len(args) == 2 else [item] * len(args))
    return {int: "INT", float: "NUMBER", str: "TEXT"}.get(plain, "VALUE")


def _is_bool(annotation: Any) -> bool:
    return _plain(annotation)[0] is bool


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option(name: str, field: Any) -> inspect.Parameter:
    """The typer option of one MeasureConfig field: help from its description, default shown
    from the field (the flag itself defaults to "not given", so the config's default applies)."""
    help_text = field.description or ""
    default = None if field.is_required() else field.get_default()
    if default is not None:  # (a None default is said by the description, or means "not used")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text += f" [default: {shown}]"
    if _is_bool(field.annotation):
        option = typer.Option(None, f"{_flag(name)}/--no-{name.replace('_', '-')}", help=help_text)
        annotation: Any = bool | None
    else:
        option = typer.Option(... if field.is_required() else None, _flag(name), help=help_text,
                              metavar=_metavar(name, field.annotation), show_default=False)
        annotation = str | None
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=annotation)


def _measure_fields() -> list[str]:
    """The specs, then the measurement's own options, then the training options."""
    from idbench.options import TrainOptions

    own = [f for f in MeasureConfig.model_fields if f not in TrainOptions.model_fields]
    return [*_SPECS, *(f for f in own if f not in _SPECS), *TrainOptions.model_fields]


def _config_value(name: str, text: str | bool | None, fields: dict[str, Any] | None = None) -> Any:
    """A flag's text as the config takes it: ``none`` for an optional field, ``a,b`` for a tuple;
    everything else is parsed (and checked) by MeasureConfig (or the model of ``fields``)."""
    if not isinstance(text, str):
        return text
    plain, optional = _plain((fields or MeasureConfig.model_fields)[name].annotation)
    if optional and text.strip().lower() in ("none", "null"):
        return None
    if typing.get_origin(plain) is tuple:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


# each flag is named explicitly: typer 0.27 derives the name of an unnamed option with a metavar
# from the metavar (--DEVICE), so `--device` was unknown there
_RUN_OPTIONS = [
    inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                      default=typer.Option("idbench-out", "--out", metavar="DIR",
                                           help="output folder: run store and Optuna studies "
                                           "(a rerun reuses them)")),
    inspect.Parameter("storage", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                      default=typer.Option(None, "--storage", metavar="URL|FILE",
                                           help="Optuna storage: RDB URL or journal file "
                                           "[default: a journal in --out]")),
    inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                      default=typer.Option(None, "--device", metavar="DEVICE",
                                           help="cpu | cuda | cuda:N | mps "
                                           "[default: cuda if available, else cpu]")),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--json", help="print one JSON object on "
                                           "stdout instead of the summary table")),
]


def measure(**flags: Any) -> None:
    from idbench.preflight import stored_measurement
    from idbench.progress import print_summary, status

    out, storage, device, as_json = (flags.pop(k) for k in ("out", "storage", "device", "as_json"))
    options = {name: _config_value(name, value) for name, value in flags.items() if value is not None}
    config = MeasureConfig.build({name: _flag(name) for name in MeasureConfig.model_fields},
                                 **options)
    # a stored measurement is printed without importing torch and the training modules (fast)
    row = stored_measurement(config, out, device=device)
    if row is None:
        from idbench.measurement import measure as run_measurement

        with _interruptible(out), status() as on_event:
            row = run_measurement(config, out=out, storage=storage, device=device,
                                  on_event=on_event)
    summary = {
        "model": row.model, "dataset": row.dataset, "projection": row.projection,
        "method": row.method, "D": row.D, "baseline_acc": row.baseline_mean,
        "threshold": row.threshold, "threshold_acc": row.threshold_score,
        quantity_name(row.threshold): row.d_int, "d_lo": row.d_lo, "d_hi": row.d_hi,
        "d_max": row.d_max, "ci_low": row.ci_low, "ci_high": row.ci_high,
        "censored": row.censored, "n_runs": row.n_runs, "wall_s": round(row.wall_s, 3),
    }
    if as_json:  # strict JSON: a non-finite number (an unbounded interval) becomes null
        typer.echo(json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                               for k, v in summary.items()}))
    else:
        print_summary(summary)


measure.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    *(_option(name, MeasureConfig.model_fields[name]) for name in _measure_fields()),
    *_RUN_OPTIONS,
])
measure.__doc__ = (
    "Measure the intrinsic dimension (d_int90 at --threshold 0.9) of one model x dataset x "
    f"projection x method. {SPEC_HELP} Every option is also a key of a suite file's defaults. "
    f"Optional values take 'none'. {SUITE_FORMAT_HELP}"
)
app.command("measure")(measure)


def pretrain(**flags: Any) -> None:
    from idbench.pretrain import pretrain as run_pretrain
    from idbench.train import RunSpec

    out, device = flags.pop("out"), flags.pop("device")
    spec = RunSpec(**{name: _config_value(name, value, RunSpec.model_fields)
                      for name, value in flags.items() if value is not None})
    with _interruptible(out):
        row, path = run_pretrain(spec, out=out, device=device)
    typer.echo(json.dumps({"run_key": row.run_key, "checkpoint": str(path),
                           "theta0": f"checkpoint[run={row.run_key},store={out}]",
                           "val_score": row.val_score, "test_score": row.test_score,
                           "wall_s": round(row.wall_s, 3)}))


def _pretrain_options() -> list[inspect.Parameter]:
    """The flags of ``idbench pretrain``: model, dataset, seed and rate of the run, then every
    training option (as ``idbench measure`` has them), then --out and --device."""
    from idbench.options import TrainOptions

    seed = typer.Option(0, "--seed", metavar="INT", help="the run's seed")
    lr = typer.Option(..., "--lr", metavar="NUMBER", help="the run's (peak) learning rate")
    return [
        *(_option(name, MeasureConfig.model_fields[name]) for name in ("model", "dataset")),
        inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=seed, annotation=int),
        inspect.Parameter("lr", inspect.Parameter.KEYWORD_ONLY, default=lr, annotation=str),
        *(_option(name, field) for name, field in TrainOptions.model_fields.items()),
        *(p for p in _RUN_OPTIONS if p.name in ("out", "device")),
    ]


pretrain.__signature__ = inspect.Signature(_pretrain_options())  # type: ignore[attr-defined]
pretrain.__doc__ = (
    "Pretrain: train one full-space run (e.g. the cell's model on another task) and store it with "
    "its final model in --out/checkpoints/<run_key>.pt; prints the theta0 that starts a cell "
    f"from it (--theta0 'checkpoint[run=KEY,store=DIR]'). {SPEC_HELP}"
)
app.command("pretrain")(pretrain)


def quantity_name(threshold: float) -> str:
    """The name of the measured quantity at ``threshold``: d_int90 at 0.9, d_int50 at 0.5."""
    return f"d_int{threshold * 100:g}"


# --------------------------------------------------------------------------- run, leaderboard


@app.command("run", help=(
    "Run a benchmark suite (a suite file, or a shipped suite's name): measure every cell and "
    "write its leaderboard, under --out unless --leaderboard names a folder (leaderboards/<suite> "
    "publishes into a checkout). The table goes to stdout, progress to stderr. "
    f"{SUITE_FORMAT_HELP}"))
def run_suite(
    suite: str = typer.Argument(..., help="suite file or shipped suite name, e.g. quickstart"),
    out: str = typer.Option(None, help="run store and studies [default: idbench-out/<suite>]"),
    leaderboard_dir: str = typer.Option(None, "--leaderboard",
                                        help="where the leaderboard goes; "
                                        "leaderboards/<suite> publishes into a checkout's boards "
                                        "[default: <out>/leaderboard]"),
    only: str = typer.Option(None, help="wildcard over model/dataset/projection/method (/optimizer when a suite has several)"),
    dry_run: bool = typer.Option(False, help="print the cells and what is stored; train nothing"),
    resume: bool = typer.Option(False, help="continue a suite whose output folder holds runs"),
    device: str = typer.Option(None, help="cpu | cuda | cuda:N | mps "
                               "[default: cuda if available, else cpu]"),
    storage: str = typer.Option(None, help="Optuna storage: RDB URL or journal file "
                                "[default: a journal in --out]"),
    executor: str = typer.Option("local", help="local (this process) | dask (Dask workers) | "
                                 "stored (train nothing: re-measure from stored runs, e.g. "
                                 "--reuse leaderboards/<suite>, and stop at a missing one)"),
    workers: int = typer.Option(None, help="dask: local workers; on a CPU each trains with "
                                "cores/workers torch threads [default: one per GPU, or per "
                                "torch thread count of cores]"),
    scheduler: str = typer.Option(None, help="dask: a running scheduler, e.g. tcp://host:8786"),
    cluster_config: str = typer.Option(None, help="dask: YAML of SLURM settings (idbench.slurm)"),
    reuse: list[str] = typer.Option(None, metavar="RESULTS",
                                    help="copy the runs of a results folder (e.g. "
                                    "leaderboards/<suite>), a runs.parquet or another run's "
                                    "--out into --out first: they are not trained again "
                                    "(repeatable)"),
) -> None:
    """``idbench run`` (its help is given to the decorator, to name the suite format)."""
    from idbench import progress
    from idbench.runner import default_out, plan, run_suite as run
    from idbench.suites import load_suite

    if dry_run:
        progress.print_plan(plan(suite, out=out, only=only, reuse=reuse or ()))
        if cluster_config:  # what each SLURM job would run, without submitting it
            from idbench import slurm

            typer.echo(slurm.job_script(slurm.load_cluster_config(cluster_config)))
        return
    options = {"workers": workers, "scheduler": scheduler, "cluster_config": cluster_config}
    if executor.startswith("dask"):
        options["device"] = device  # which devices the local workers own
    store = out or str(default_out(load_suite(suite)))
    with _interruptible(store, resume=True), progress.suite_progress() as (on_cell, on_event):
        result = run(suite, out=out, leaderboard_dir=leaderboard_dir, only=only, resume=resume,
                     device=device, storage=storage, executor=executor, executor_options=options,
                     on_event=on_event, on_cell=on_cell, reuse=reuse or ())
    for label, reason in result.skipped:
        typer.echo(f"idbench: skipped {label}: {reason}", err=True)
    typer.echo(f"idbench: {_runs(result.reused_runs)} reused from {store}, "
               f"{_runs(result.trained_runs, 'run')} trained", err=True)
    typer.echo(result.table)
    folders = sorted({str(path.parent) for path in result.files.values()})
    typer.echo(f"idbench: leaderboard written to {', '.join(folders)} "
               f"({', '.join(sorted(path.name for path in result.files.values()))})", err=True)


@app.command()
def leaderboard(
    results: str = typer.Argument(..., help="a folder of results: the --out of `idbench measure` "
                                  "or `idbench run`, or leaderboards/<suite>"),
    fmt: str = typer.Option("md", "--format", help="md | html | latex | csv"),
    plot: str = typer.Option(None, help="also write the score-against-d plot to this file "
                             "(.png or .svg)"),
) -> None:
    """Render a leaderboard table from stored results, without training."""
    import idbench.leaderboard as lb
    from idbench.preflight import check_plot_path

    if plot:
        check_plot_path(plot)
    measurements, runs = lb.load_results(results)
    df = lb.table(measurements, runs)
    typer.echo(lb.format_table(df, fmt))
    if plot:
        from idbench.leaderboard import plots

        plots.save(plots.accuracy_vs_d(df), plot)


# what `idbench ls` lists: each kind's registry (module, attribute), or the shipped suites
_KINDS = {"models": ("idbench.models", "MODELS"), "datasets": ("idbench.data", "DATASETS"),
          "projections": ("idbench.projections", "PROJECTIONS"),
          "methods": ("idbench.methods", "METHODS"), "suites": None}


def list_entries(kind: str, pattern: str = "*") -> list[Any]:
    """The entries of one kind whose names match ``pattern`` (``idbench ls``): registered
    components as their registry describes them (:meth:`idbench.registry.Registry.describe`),
    shipped suites with their description."""
    import importlib

    if kind not in _KINDS:
        close = difflib.get_close_matches(kind, list(_KINDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise IdbenchError(f"cannot list {kind!r}.{hint} Choose one of {', '.join(_KINDS)}")
    if _KINDS[kind] is None:
        return _suite_entries(pattern)
    module, attribute = _KINDS[kind]
    registry = getattr(importlib.import_module(module), attribute)
    return [registry.describe(name) for name in registry.list(pattern)]


def _suite_entries(pattern: str) -> list[Any]:
    """The shipped suites matching ``pattern``, each with its file's description."""
    import fnmatch

    import yaml

    from idbench.registry import Entry
    from idbench.suites import shipped_suites

    entries = []
    for name, path in shipped_suites().items():
        if fnmatch.fnmatch(name, pattern):
            text = (yaml.safe_load(path.read_text()) or {}).get("description") or ""
            entries.append(Entry(name, " ".join(str(text).split()), [], False))
    return entries


# --------------------------------------------------------------------------- interrupts, warnings


@contextlib.contextmanager
def _interruptible(out: str | Path, *, resume: bool = False) -> Iterator[None]:
    """Turn Ctrl-C into one line (what is stored in ``out``, the command that continues) and exit
    status 130. ``resume``: the command continues with ``--resume`` (``idbench run``)."""
    try:
        yield
    except KeyboardInterrupt:
        again = list(_ARGV)
        if resume and "--resume" not in again:
            again.append("--resume")
        from idbench.store import stored_run_keys

        stored = len(stored_run_keys(out))
        what = f"{_runs(stored, 'finished run')} stored in {out}" if stored \
            else "no finished run stored yet"
        typer.echo(f"idbench: interrupted: {what}; continue with: "
                   f"{shlex.join(['idbench', *again])}", err=True)
        raise SystemExit(130) from None


def _runs(count: int, noun: str = "stored run") -> str:
    """``1 stored run``, ``2 stored runs``."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


_SHOWN: set[str] = set()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """One line per warning, each text once per process (not Python's two lines with the
    source line)."""
    text = " ".join(str(message).split())
    if text in _SHOWN:
        return
    _SHOWN.add(text)
    typer.echo(f"idbench: warning: {text}", err=True)


# click's exception classes, found through typer's public ones (typer bundles its own click)
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script (``argv``: the arguments, default ``sys.argv[1:]``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _ARGV[:] = argv
    _SHOWN.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            code = app(args=argv, prog_name="idbench", standalone_mode=False)
        except IdbenchError as exc:
            _fail(str(exc))
        except _CLICK_ERROR as exc:  # a flag click cannot parse: the same one line
            if type(exc).__name__ == "NoArgsIsHelpError":  # `idbench` alone: its help
                typer.echo(exc.format_message())
                sys.exit(0)
            command = f"idbench {exc.ctx.info_name}" if getattr(exc, "ctx", None) and \
                exc.ctx.info_name != "idbench" else "idbench"
            _fail(f"{exc.format_message()} (see `{command} --help`)")
        except (KeyboardInterrupt, typer.Abort):  # before any command started to store anything
            typer.echo("idbench: interrupted: nothing was stored", err=True)
            sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> None:
    typer.echo(f"idbench: error: {' '.join(message.split())}", err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
