"""Where training runs execute: in this process (``local``, the default) or on a Dask cluster;
or nowhere (``stored``: a re-measurement from stored runs that must train nothing).

An executor maps a picklable function over independent training runs and returns the results in
order. The measurement code hands it every seed of one probe at once, so seeds run in parallel on a
distributed executor while the d search itself stays sequential. When runs do not train in this
process (``in_process`` False), a pooled cell's independent draws are measured at once (a thread
each, :func:`idbench.draws.measure_draws`) and :func:`idbench.run_suite` measures several cells at
once (one thread per cell, up to ``slots``).

The interface (:class:`Executor`) is small::

    with idbench.executors.create("dask[workers=2]") as executor:   # or "local"
        results = executor.map(fn, items)      # ordered; blocks; safe to call from threads
        executor.slots                         # how many runs execute at once
        executor.in_process                    # runs train here (Optuna prunes them live)
        executor.cancel()                      # drop outstanding work, refuse new work

On a worker, :func:`idbench.workers.worker_device` is the device that worker owns (``cuda:1``,
``cpu``), and :func:`idbench.cell.execute` trains there, whatever device the parent process uses.
"""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar, runtime_checkable

from idbench.errors import IdbenchError
from idbench.registry import Registry
from idbench.workers import DASK_HINT

T = TypeVar("T")
R = TypeVar("R")
TRAINS_HERE = {"local": "train in this process", "stored": "re-measure from stored runs alone"}



@runtime_checkable
class Executor(Protocol):
    """What the measurement and the suite runner need from an executor."""

    name: str
    slots: int  # runs that execute at once
    # runs train in this process: a tuning trial is pruned live by Optuna, and the cells of a suite
    # are measured one after the other; otherwise runs go elsewhere and cells run concurrently
    in_process: bool

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs everything in the calling process, one run after the other."""

    name = "local"
    slots = 1
    in_process = True

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return [fn(item) for item in items]

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def concurrently(calls: Sequence[Callable[[], R]], executor: Executor, *, threads: int,
                 name: str) -> list[R]:
    """Call ``calls`` in up to ``threads`` threads that wait on ``executor``'s workers; their
    results in order.

    The first error (or Ctrl-C) cancels the calls not started yet and the executor's runs in
    flight, so the threads waiting on them end promptly, and is raised: what finished is stored,
    so a rerun resumes from there. Used for what a distributed executor can train side by side: a
    suite's cells, a pooled cell's draws.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, min(threads, len(calls))),
                              thread_name_prefix=name)
    futures = []
    try:
        futures = [pool.submit(call) for call in calls]
        # wake up now and then: a signal (Ctrl-C) is only handled while this thread runs Python
        while wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION).not_done:
            if any(f.done() and f.exception() is not None for f in futures):
                break
        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            failed.result()  # raises the call's error (the except below cancels the rest)
        return [f.result() for f in futures]
    except BaseException:
        for future in futures:
            future.cancel()  # calls not started yet
        executor.cancel()  # runs in flight: the waiting threads then end promptly
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class StoredOnly(LocalExecutor):
    """Trains nothing: every run a measurement asks for must already be stored, e.g. a published
    board's runs copied in by ``--reuse``. Checking a board (``idbench run SUITE --reuse
    leaderboards/SUITE --executor stored``) then re-measures it from its runs and cannot start
    hours of training when a run is missing: it stops with one line naming that run instead."""

    name = "stored"

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        items = list(items)
        if not items:
            return []
        job = items[0]
        spec = job[0] if isinstance(job, tuple) else job  # (spec, device) or a spec
        where = "full space" if spec.d is None else f"d = {spec.d}"
        raise IdbenchError(
            f"--executor stored trains nothing, and a run this measurement needs is not stored: "
            f"{spec.model} on {spec.dataset}, {where}, lr {spec.lr:.6g}, seed {spec.seed} (run "
            f"{spec.key()}); --reuse the results that hold it, or train it with another executor")


EXECUTORS: Registry = Registry("executor")
EXECUTORS.register("local")(LocalExecutor)
EXECUTORS.register("stored")(StoredOnly)


@EXECUTORS.register("dask")
def _dask(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster_config: str | None = None,
    device: str | None = None,
    retries: int = 2,
    timeout: float = 5.0,
) -> Executor:
    """Dask distributed (see :mod:`idbench.dask_executor`); needs the ``dask`` extra."""
    try:
        from idbench.dask_executor import DaskExecutor
    except ImportError as exc:
        raise IdbenchError(
            f"--executor dask needs Dask distributed and dask-jobqueue ({exc.name} is not "
            f"installed): {DASK_HINT}"
        ) from None
    return DaskExecutor(workers=workers, scheduler=scheduler, cluster_config=cluster_config,
                        device=device, retries=retries, timeout=timeout)


def create(spec: str = "local", **options: Any) -> Executor:
    """The executor named by ``spec`` (``local``, ``dask``, ``dask[workers=4]``).

    Options that are None are left out, so callers can pass every command-line option; an option
    the executor does not take is refused with the list of those it does.
    """
    options = {k: v for k, v in options.items() if v is not None}
    _, name, _ = EXECUTORS.resolve(spec)
    if name in ("local", "stored") and options:
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(options))
        raise IdbenchError(f"{flags}: only for a Dask cluster; add --executor dask (runs then go "
                           f"to Dask workers), or leave it out to {TRAINS_HERE[name]}")
    return EXECUTORS.create(spec, **options)


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "StoredOnly", "create"]
