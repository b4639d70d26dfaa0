"""The runs of one measurement while it is measured: :class:`CellRuns` trains or reuses them.

A measurement asks for runs by :class:`~idbench.train.RunSpec` (its probes and baselines, and the
trials of its learning-rate tunings, :mod:`idbench.lr.tuner`); this module answers from the run
store where a run is finished, trains the rest through the executor, records every run it trains,
and remembers every run the measurement used (its ``n_runs`` and wall time count them whether
trained now or found in the store).

Cells measured concurrently (distributed executors) can share runs and Optuna studies, e.g. the
baseline of one model under several projections: the locks of :func:`holding` let the first thread
train them while the others wait and then find them in the store.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
import threading
from typing import Any, Callable, Iterator, Sequence

import idbench.data
import idbench.models
from idbench.config import MeasureConfig
from idbench.data import Dataset
from idbench.executors import Executor
from idbench.options import TrainOptions
from idbench.schema import RunRow
from idbench.provenance import device_name
from idbench.registry import Spec
from idbench.rows import run_row
from idbench.store import RunStore
from idbench.train import MAX_RETRIES, EvalCallback, RunResult, RunSpec, StopRun, run
from idbench.workers import worker_device

SAME_RATE = 1e-9  # relative: two learning rates closer than this are one rate (stored_rate)
OnEvent = Callable[[str], None]


@functools.lru_cache(maxsize=2)
def load_data(dataset: str | Spec, device: str, val_fraction: float,
              split_seed: int = 0) -> Dataset:
    """Load a dataset once per process (suites measure many cells on the same data)."""
    return idbench.data.load(dataset, device=device, val_fraction=val_fraction,
                             split_seed=split_seed)


def execute(job: tuple[RunSpec, str], max_retries: int = MAX_RETRIES) -> tuple[RunResult, str]:
    """Train one run (``job`` = (spec, device)); returns (result, device name it trained on).

    A top-level function so executors can ship it. On a Dask worker the run trains on the
    worker's own device (:func:`idbench.workers.worker_device`), not the parent's.
    ``max_retries``: 0 for tuning runs, wherever they train (:func:`idbench.train.run`).
    """
    spec, device = job
    device = worker_device() or device
    data = load_data(spec.dataset, device, spec.val_fraction, spec.split_seed)
    return run(spec, data, max_retries=max_retries), device_name(device)


def parameter_count(config: MeasureConfig, data: Dataset) -> int:
    """D: the number of parameters of the cell's model on its data."""
    net = idbench.models.create(config.model, input_shape=data.input_shape,
                                num_classes=data.num_classes)
    return sum(p.numel() for p in net.parameters())


def run_spec(config: MeasureConfig, *, seed: int, lr: float, d: int | None = None,
             damping: float | None = None) -> RunSpec:
    """The RunSpec of a baseline run (``d`` None) or a subspace run of ``config``: the config's
    training options, the cell's model and data, and for subspace runs its projection and method;
    ``damping``: ngd's damping where it was tuned (None: the config's ``ngd_damping``)."""
    options = config.model_dump(include=set(TrainOptions.model_fields))
    if damping is not None:
        options["ngd_damping"] = damping
    subspace = {} if d is None else {"projection": config.projection, "d": d,
                                     "compartments": config.compartments,
                                     "method": config.method, "said": config.said}
    return RunSpec(model=config.model, dataset=config.dataset, seed=seed, lr=lr, **subspace,
                   **options)


def stored_rate(lr: float, rates: Sequence[float]) -> float:
    """The stored rate within :data:`SAME_RATE` of ``lr`` (``rates``: sorted), else ``lr``.

    A run's key holds its rate to the last bit, and a tuned rate is not reproducible to the last
    bit across machines: TPE's proposal is computed in floating point (NumPy's vectorised exp and
    log among it), and a carried rate inherits any difference. Without this, a measurement
    re-measured from its runs elsewhere (a published ``runs.parquet``, ``--reuse``) would train
    again, at a rate equal to the stored one to 16 digits, runs it already has, and its result
    could move.
    """
    i = bisect.bisect_left(rates, lr)
    near = [rate for rate in rates[max(i - 1, 0):i + 1]
            if math.isclose(rate, lr, rel_tol=SAME_RATE)]
    return min(near, key=lambda rate: abs(rate - lr), default=lr)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def holding(names: list[str]) -> Iterator[None]:
    """Hold the locks of ``names`` (taken in sorted order, so threads cannot deadlock)."""
    with _LOCKS_GUARD:
        locks = [_LOCKS.setdefault(name, threading.Lock()) for name in sorted(set(names))]
    with contextlib.ExitStack() as stack:
        for lock in locks:
            stack.enter_context(lock)
        yield


class CellRuns:
    """The runs of one cell: stored, trained, and which of them the measurement used."""

    def __init__(self, config: MeasureConfig, store: RunStore, executor: Executor, device: str,
                 suite: str | None, on_event: OnEvent | None) -> None:
        self.config, self.store, self.executor = config, store, executor
        self.device, self.suite = device, suite
        self.on_event = on_event or (lambda message: None)
        self.key = config.key()
        self.data = load_data(config.dataset, device, config.val_fraction, config.split_seed)
        self.used: dict[str, RunRow] = {}
        self.stored = store.table()  # the runs stored before this measurement began
        self.rates = sorted(set(self.stored["lr"].drop_nulls().to_list()))  # (stored_rate)
        # ngd's damping chosen with the rate by the latest tuning of each phase (damping_range)
        self.damping: dict[str, float] = {}

    def spec(self, seed: int, lr: float, d: int | None = None,
             damping: float | None = None) -> RunSpec:
        """The RunSpec of a baseline (``d`` None) or subspace run at ``lr`` and ``damping`` (None:
        the damping tuned with the phase's rate where it was tuned), :func:`run_spec`; at ``lr``
        where that run is stored, else at the stored rate that ``lr`` equals
        (:func:`stored_rate`), whether it was stored before this measurement began or by it: a
        rate re-tuned to within an ulp of the carried one reuses its runs, so an interrupted and
        resumed measurement matches an uninterrupted one."""
        damping = self.damping.get(phase(d)) if damping is None else damping
        spec = run_spec(self.config, seed=seed, lr=lr, d=d, damping=damping)
        rate = lr if self.store.has(spec.key()) else stored_rate(lr, self.rates)
        return spec if rate == lr else run_spec(self.config, seed=seed, lr=rate, d=d,
                                                damping=damping)

    def record(self, spec: RunSpec, result: RunResult, role: str,
               device: str | None = None, origin: dict[str, Any] | None = None) -> RunRow:
        """Store the run ``spec`` trained to ``result`` and count it as used; ``origin``: where its
        rate was tuned and how it was carried (RunRow's lr_tuned_at, lr_carried_by)."""
        row = run_row(spec, result, cell=self.key, suite=self.suite, role=role,
                      metric=self.data.metric, device=device or device_name(self.device))
        if origin:
            row = row.model_copy(update=origin)
        self.store.put(row)
        i = bisect.bisect_left(self.rates, row.lr)
        if i == len(self.rates) or self.rates[i] != row.lr:
            self.rates.insert(i, row.lr)
        self.used[row.run_key] = row
        return row

    def runs(self, specs: list[RunSpec], role: str,
             origin: dict[str, Any] | None = None) -> list[RunRow]:
        """Rows of ``specs``: from the store where finished, else trained through the executor
        (and recorded with ``origin``, see :meth:`record`). A stored run that ended at chance or
        diverged after fewer retries than :func:`idbench.train.run` now makes (stored before it
        retried such runs, or retried them fewer times) is trained again, so a result never
        depends on when its runs were stored."""
        with holding([self.lock_name(s.key()) for s in specs]):
            rows = {s.key(): self.store.get(s.key()) for s in specs}
            missing = [s for s in specs if rows[s.key()] is None or self._unretried(rows[s.key()])]
            if missing:
                results = self.executor.map(execute, [(s, self.device) for s in missing])
                for spec, (result, device) in zip(missing, results):
                    rows[spec.key()] = self.record(spec, result, role, device, origin)
        for row in rows.values():
            self.used[row.run_key] = row
        return [rows[s.key()] for s in specs]

    def _unretried(self, row: RunRow) -> bool:
        failed = row.diverged or self.data.at_chance(row.val_score, row.val_loss)
        return failed and row.retries < MAX_RETRIES

    def train(self, spec: RunSpec, on_eval: EvalCallback) -> tuple[RunResult, str | None]:
        """Train one run without retries (a tuning trial), reporting each evaluation to
        ``on_eval``: live here, or after the run on a worker (a :class:`StopRun` raised by
        ``on_eval`` then ends the report, where here it ends training). Returns the result and
        the device name it trained on (None: here). Nothing is stored."""
        if self.executor.in_process:  # (through the executor: one that trains nothing refuses)
            [result] = self.executor.map(
                lambda s: run(s, self.data, on_eval=on_eval, max_retries=0), [spec])
            return result, None
        [(result, device)] = self.executor.map(functools.partial(execute, max_retries=0),
                                               [(spec, self.device)])
        with contextlib.suppress(StopRun):
            for index, point in enumerate(result.history):
                on_eval(index, point["val_score"], point["val_loss"])
        return result, device

    def lock_name(self, key: str) -> str:
        """The name of the lock that guards ``key`` (a run's or a study's) in this store."""
        return f"{self.store.out_dir.resolve()}/{key}"


def phase(d: int | None) -> str:
    """The phase whose runs a run at ``d`` belongs to: baseline (``d`` None) or subspace."""
    return "baseline" if d is None else "subspace"


