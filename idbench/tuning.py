"""Learning-rate tuning with Optuna, on training and validation data only.

The right learning rate spans orders of magnitude across d and projections, so it is searched
log-uniformly over a wide range (first on an even log grid, then with TPE), minimising the final validation loss of a run (the loss
is smoother than accuracy and is what the random-bases study tuned on). A median pruner stops
trials whose intermediate validation loss is already worse than the median of earlier trials at
the same evaluation. Diverged runs score +inf, which steers TPE away from too-large rates.

A protocol that tuned on powers of two (the random-bases study's) is followed with ``powers``:
every trial is then a power of two in the range, spread evenly over them, and TPE proposes none.

A study returns its trial of lowest loss (diverged trials count as +inf; when every trial
diverged, the smallest rate tried).

With ``damping_range`` (optimizer ngd, :class:`~idbench.config.MeasureConfig`'s option of that
name) the study searches the rate and the log-damping jointly: ngd's step outside the few
directions its Fisher sketch spans is the SGD step divided by the damping, so the best rate moves
with it and the two cannot be tuned one after the other.

Studies live in an Optuna storage (by default a journal file in the output folder), so tuning
resumes after an interruption, and any RDB storage URL can be shared by several machines.

Example::

    best, tried = tune_lr(lambda lr, report, **extra: run(spec_with(lr, **extra), data,
                                                          on_eval=report),
                          study_name="cell-baseline", storage="sqlite:///out/optuna.db",
                          n_trials=8, lr_range=(1e-4, 10.0))
    best["lr"], best.get("damping")  # damping: only with damping_range
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from typing import Callable, Sequence

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from idbench.atomic import alive
from idbench.errors import IdbenchError
from idbench.lr.options import powers_of_two
from idbench.seeding import derive_seed
from idbench.train import RunResult

optuna.logging.set_verbosity(optuna.logging.WARNING)
# A trial's error (a bug, or Ctrl-C) propagates out of tune_lr and is reported once, by the caller;
# Optuna's own "Trial N failed ..." warning would repeat it, with a traceback.
logging.getLogger("optuna.study._optimize").addFilter(
    lambda record: not record.getMessage().startswith("Trial ") or " failed " not in record.getMessage()
)

TrainAt = Callable[..., RunResult]  # train_at(lr, report), tuning damping (lr, report, damping=)
Params = dict[str, float]  # a trial's parameters: lr, and damping when it is tuned
STARTUP_TRIALS = 4  # trials on an even log grid before TPE takes over
Pruned = optuna.TrialPruned  # raised by a trial's report when the pruner stops the trial


# the pip package of each database driver module SQLAlchemy imports (where the names differ)
_DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary",
                    "MySQLdb": "mysqlclient", "pymysql": "PyMySQL"}


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``, or one clear error saying why it cannot be opened.

    ``url`` is an RDB URL (``sqlite:///f.db``, ``postgresql://...``: safe for many processes on
    many machines with a server database) or a path to a journal file (the default: an
    append-only log with file locks, fast and safe for several processes on one machine).
    """
    if "://" not in url:
        try:
            return JournalStorage(JournalFileBackend(url))
        except OSError as exc:
            raise IdbenchError(f"cannot open tuning journal {url!r}: {exc.strerror or exc}") from None
    try:
        return optuna.storages.get_storage(url)
    except ImportError as exc:  # Optuna re-raises the driver's ModuleNotFoundError as its own
        missing = next((e.name for e in (exc, exc.__cause__, exc.__context__)
                        if isinstance(e, ModuleNotFoundError) and e.name), None)
        if missing is None:
            raise IdbenchError(f"cannot open tuning storage {url!r}: {exc}") from None
        package = _DRIVER_PACKAGES.get(missing, missing)
        raise IdbenchError(
            f"cannot open tuning storage {url!r}: its database driver, the Python module "
            f"{missing}, is not installed: pip install '{package}' (or use a journal file or a "
            "sqlite:/// URL)"
        ) from None
    except Exception as exc:  # SQLAlchemy raises many kinds for bad URLs and unreachable servers
        raise IdbenchError(f"cannot open tuning storage {url!r}: {exc}") from None


def tune_lr(
    train_at: TrainAt,
    *,
    study_name: str,
    storage: str,
    n_trials: int,
    lr_range: tuple[float, float],
    damping_range: tuple[float, float] | None = None,
    replay: Sequence[Params] = (),
    draw: int = 0,
    powers: bool = False,
) -> tuple[Params, list[Params]]:
    """(best parameters, parameters of every completed trial): best = lowest final validation
    loss; parameters: ``{"lr": ...}``, plus ``"damping"`` when ``damping_range`` is given.

    ``train_at(lr, report)`` (with ``damping_range``: ``train_at(lr, report, damping=...)``)
    trains one run and must call ``report(index, val_score, val_loss)`` after each evaluation.
    Trials already finished in the stored study count toward ``n_trials``. ``replay``: the
    parameters of an earlier run of this study, in the order it tried them (its stored runs,
    when its journal is gone): they are tried first, so the study re-made from the runs alone
    proposes after them what the original proposed (TPE learns only from finished trials).
    ``draw``: which draw of the tuner (:func:`grid_offset`): 0 is the default, another number
    places the grid trials elsewhere in their bins (TPE's draws differ through ``study_name``).
    ``powers``: every trial at a power of two (:func:`power_of_two_grid`), none proposed by TPE.
    """
    if powers:
        startup = [{"lr": lr} for lr in power_of_two_grid(lr_range, n_trials, draw)]
        n_trials = len(startup)
    else:
        startup = startup_params(lr_range, damping_range, min(STARTUP_TRIALS, n_trials), draw)
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage),
        direction="minimize",
        # the grid trials are never pruned: under a decaying schedule a large rate looks bad
        # early and good at the end, and with few trials each grid point matters
        pruner=optuna.pruners.MedianPruner(n_startup_trials=max(STARTUP_TRIALS, len(startup)),
                                           n_warmup_steps=2),
        load_if_exists=True,
    )
    _fail_orphans(study)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    first = [*replay, *startup[len(replay):]]
    while (finished := sum(t.state in done for t in study.trials)) < n_trials:
        if finished < len(first) and not _queued(study, first[finished]):
            study.enqueue_trial(first[finished])
        # a sampler seeded by the number of finished trials makes a resumed study propose
        # exactly what an uninterrupted one would have
        study.sampler = optuna.samplers.TPESampler(
            seed=derive_seed(study_name, finished) % 2**32, n_startup_trials=len(startup)
        )
        study.optimize(lambda trial: _objective(trial, train_at, lr_range, damping_range),
                       n_trials=1)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise IdbenchError(
            f"learning-rate tuning ({study_name}) finished no trial: every trial was pruned; "
            "raise --tune-trials"
        )
    return _best(complete), [dict(t.params) for t in complete]


def tried_rates(study_name: str, storage: str) -> list[float]:
    """The rate of every finished trial of a stored study, pruned ones included: the rates it
    tried, whether it ran them to the end or judged them worse on the way."""
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t.params["lr"] for t in study.trials if t.state in done]


def _best(complete: list[optuna.trial.FrozenTrial]) -> Params:
    """The parameters of the finished trial of lowest loss (all diverged: the smallest rate
    tried, the least bad guess)."""
    finite = [t for t in complete if math.isfinite(t.value)]
    if not finite:
        return dict(min((t.params for t in complete), key=lambda p: p["lr"]))
    return dict(min(finite, key=lambda t: t.value).params)


def _queued(study: optuna.Study, wanted: Params) -> bool:
    """Whether a trial at ``wanted`` is waiting or finished. A trial left running (or failed) by a
    killed process does not count: optuna's ``skip_if_exists`` counts it, and a resumed study would
    then draw a random rate where an uninterrupted one ran the grid's."""
    live = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED)
    for trial in study.trials:
        params = trial.system_attrs.get("fixed_params", trial.params)
        if trial.state in live and all(math.isclose(params.get(name, math.nan), value)
                                       for name, value in wanted.items()):
            return True
    return False


def grid_offset(draw: int) -> float:
    """Where in its bin each grid trial of tuner draw ``draw`` lies (0.5: the centre, draw 0).

    The grid trials decide much of a tuning (TPE's few later trials often pick no better rate), so
    a draw that kept the grid would repeat most of the first draw's choices: another draw moves
    the grid by the golden ratio's fractional steps, which spread evenly over the bin.
    """
    return (0.5 + draw * (math.sqrt(5) - 1) / 2) % 1.0


def startup_grid(lr_range: tuple[float, float], n: int, draw: int = 0) -> list[float]:
    """``n`` rates, one in each of ``n`` equal bins of the log range (at the centres for draw 0,
    :func:`grid_offset`): with few trials, an even cover of the range beats random draws, which
    can all land in one corner."""
    lo, hi = (math.log(v) for v in lr_range)
    offset = grid_offset(draw)
    return [math.exp(lo + (hi - lo) * (i + offset) / n) for i in range(n)]


def power_of_two_grid(lr_range: tuple[float, float], n: int, draw: int = 0) -> list[float]:
    """Up to ``n`` powers of two in ``lr_range`` (a protocol that tunes on them, as the
    random-bases study did): all of them when there are at most ``n``, else ``n`` spread evenly
    over them (one per equal share, where in its share set by :func:`grid_offset`)."""
    powers = powers_of_two(lr_range)
    if n >= len(powers):
        return powers
    offset = grid_offset(draw)
    return [powers[int((i + offset) * len(powers) / n)] for i in range(n)]


def startup_params(lr_range: tuple[float, float], damping_range: tuple[float, float] | None,
                   n: int, draw: int = 0) -> list[Params]:
    """The first ``n`` trials: rates on :func:`startup_grid`; with ``damping_range``, dampings
    on the same grid of their range, paired evens-then-odds (bins 0, 2, .., 1, 3, ..) so that
    neither lr nor lr / damping (ngd's step outside its sketch) sits at one value."""
    rates = [{"lr": lr} for lr in startup_grid(lr_range, n, draw)]
    if damping_range is None:
        return rates
    dampings = startup_grid(damping_range, n, draw)
    order = sorted(range(n), key=lambda i: (i % 2, i))
    return [{**rate, "damping": dampings[j]} for rate, j in zip(rates, order)]


def _fail_orphans(study: optuna.Study) -> None:
    """Fail the trials a killed process of this machine left running. TPE counts a running trial,
    so a resumed study would propose after it other rates than an uninterrupted one. A trial of
    a live process (another ``idbench run`` on the same folder), of another machine or of a
    version that did not record its process is left as it is."""
    here = socket.gethostname()
    for trial in study.trials:
        host, _, pid = str(trial.user_attrs.get("process", "")).rpartition(":")
        running = trial.state == optuna.trial.TrialState.RUNNING
        if running and host == here and pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(ValueError):  # another process failed it first
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def _objective(trial: optuna.Trial, train_at: TrainAt, lr_range: tuple[float, float],
               damping_range: tuple[float, float] | None) -> float:
    trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")  # _fail_orphans
    lr = trial.suggest_float("lr", *lr_range, log=True)
    extra = {} if damping_range is None else \
        {"damping": trial.suggest_float("damping", *damping_range, log=True)}

    def report(index: int, val_score: float, val_loss: float) -> None:
        trial.report(val_loss, index)
        if trial.should_prune():
            raise Pruned()

    result = train_at(lr, report, **extra)
    trial.set_user_attr("val_score", result.val_score)
    return math.inf if result.diverged else result.val_loss
