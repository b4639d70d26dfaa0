"""The ``dask`` executor: training runs as tasks on Dask distributed workers.

Where the workers come from:

- nothing given: a :class:`distributed.LocalCluster` on this machine, one worker process per GPU,
  or on a CPU-only machine ``cores // threads`` of them (``workers`` overrides the count). Every
  worker trains with this process's torch thread count (``torch.get_num_threads()``, what runs
  trained here use): float reductions, and so results, depend on it, so a run gives the same
  result on either executor and equal run keys mean equal results. Except where ``workers`` CPU
  workers at that count would oversubscribe the cores: then each gets ``cores // workers``
  threads, with one warning (threads waiting on each other slow every run down:
  ``benchmarks/worker_threads.py``). ``IDBENCH_WORKER_THREADS``
  overrides both (each run row records its ``threads``);
- ``scheduler="tcp://host:8786"``: an existing cluster (start its workers with
  ``dask worker ADDRESS --nthreads 1 --resources device=1``);
- ``cluster_config="cluster.yaml"``: dask-jobqueue submits workers to SLURM (:mod:`idbench.slurm`).

Devices: every worker owns one device (``IDBENCH_WORKER_DEVICE`` when set, else the one this
executor assigned, else its first visible GPU or the CPU) and declares the resource ``device=1``;
every run asks for ``device=1``, so a worker trains one run at a time and no two runs share a GPU
unless ``workers`` exceeds the number of GPUs (then workers share them round-robin: that is
asking for it).

Faults: a worker that dies in the middle of a run (out of memory, killed) is restarted by its
nanny and the scheduler gives the run to a worker again, at most ``retries`` more times (for a
local cluster; a remote scheduler applies its own ``distributed.scheduler.allowed-failures``).
Exceptions raised by a run are not retried: training is deterministic, so it would fail again.
The parent stores each result under its run key, so a run that executed twice is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import warnings
from concurrent.futures import CancelledError
from typing import Any, Callable, Iterable, TypeVar

import distributed
import distributed.comm
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from idbench.errors import IdbenchError
from idbench.workers import set_worker_device

T = TypeVar("T")
R = TypeVar("R")

DEVICE_ENV = "IDBENCH_WORKER_DEVICE"
THREADS_ENV = "IDBENCH_WORKER_THREADS"


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask, e.g. a container's or SLURM's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads(workers: int, threads: int, cores: int) -> int:
    """Torch threads of each of ``workers`` local CPU workers: this process's ``threads``, unless
    together they would exceed ``cores``, then an equal share of the cores (at least 1)."""
    return threads if workers * threads <= cores else max(1, cores // workers)


def local_devices(workers: int | None, device: str | None) -> list[str]:
    """The device of each local worker: one per GPU (or ``workers``), else ``cpu`` for every
    ``torch.get_num_threads()`` cores (the threads each worker trains with)."""
    import torch

    if workers is not None and workers < 1:
        raise IdbenchError(f"--workers must be at least 1, got {workers}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise IdbenchError("--device cuda: no CUDA GPU is visible; use --device cpu")
        owned = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    elif device == "cpu":
        return ["cpu"] * (workers or max(1, cpu_cores() // torch.get_num_threads()))
    else:
        owned = [device]
    return [owned[i % len(owned)] for i in range(workers or len(owned))]


class DevicePlugin(WorkerPlugin):
    """Runs on every worker as it starts (also after a restart): sets its device and threads."""

    name = "idbench-device"
    idempotent = True  # a second client of the cluster keeps the devices its owner assigned

    def __init__(self, devices: list[str] | None = None, threads: int | None = None) -> None:
        self.devices, self.threads = devices, threads

    def setup(self, worker: Any) -> None:
        import torch

        device = os.environ.get(DEVICE_ENV) or self._assigned(worker.name) or _auto(worker.name)
        set_worker_device(device)
        threads = int(os.environ.get(THREADS_ENV) or 0) or self.threads or worker.state.nthreads
        torch.set_num_threads(max(1, threads))

    def _assigned(self, name: Any) -> str | None:
        """A local cluster names its workers 0, 1, ...: worker i owns ``devices[i]``."""
        if not self.devices or not str(name).isdigit():
            return None
        return self.devices[int(name) % len(self.devices)]


def _auto(name: Any) -> str:
    """A worker's device when nobody said: with several workers per batch job (dask-jobqueue
    names them ``<job>-<i>``), worker i takes visible GPU i; one worker takes GPU 0; else cpu."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    parts = str(name).split("-")
    index = int(parts[-1]) if len(parts) >= 3 and parts[-1].isdigit() else 0
    return f"cuda:{index % torch.cuda.device_count()}"


class DaskExecutor:
    """Training runs as Dask tasks, one per worker at a time (see the module docstring)."""

    name = "dask"
    in_process = False  # runs train on the workers

    def __init__(
        self,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        cluster_config: str | None = None,
        device: str | None = None,
        retries: int = 2,
        timeout: float = 5.0,
        devices: list[str] | None = None,
    ) -> None:
        if scheduler and cluster_config:
            raise IdbenchError("give either --scheduler (an existing cluster) or --cluster-config "
                               "(submit workers to SLURM), not both")
        if workers is not None and (scheduler or cluster_config):
            raise IdbenchError("--workers sizes a local cluster: with --scheduler the cluster's "
                               "own workers run, with --cluster-config the config's `jobs:`")
        self._lock = threading.Lock()
        self._outstanding: set[distributed.Future] = set()
        self._cancelled = False
        self.cluster: Any = None
        self._expected = 1
        if scheduler:
            self.client = _connect(scheduler, timeout)
            self._check_remote_workers(scheduler)
            plugin = DevicePlugin()
        elif cluster_config:
            from idbench import slurm

            settings = slurm.load_cluster_config(cluster_config)
            self.cluster, self._expected = slurm.start(settings, retries=retries)
            self.client = Client(self.cluster, set_as_default=False)
            plugin = DevicePlugin()
        else:
            import torch

            devices = devices or local_devices(workers, device)
            threads = torch.get_num_threads()  # as runs trained here: the same results
            if all(d == "cpu" for d in devices) and not os.environ.get(THREADS_ENV):
                shared = worker_threads(len(devices), threads, cpu_cores())
                if shared < threads:
                    warnings.warn(
                        f"{len(devices)} CPU workers x {threads} torch threads would oversubscribe "
                        f"{cpu_cores()} cores: each worker trains with {shared} (rows record it; "
                        f"results can differ in the last digits from runs at {threads}); "
                        f"{THREADS_ENV} sets it", stacklevel=2)
                    threads = shared
            self.cluster = LocalCluster(
                n_workers=len(devices), threads_per_worker=1, processes=True,
                resources={"device": 1}, dashboard_address=":0", silence_logs=logging.ERROR,
                scheduler_kwargs={"allowed_failures": retries},
            )
            self.client = Client(self.cluster, set_as_default=False)
            self._expected = len(devices)
            plugin = DevicePlugin(devices, threads)
        self.client.register_plugin(plugin, name=DevicePlugin.name)

    def _check_remote_workers(self, address: str) -> None:
        workers = self.client.scheduler_info().get("workers", {})
        self._expected = max(1, len(workers))
        if workers and not any(w.get("resources", {}).get("device") for w in workers.values()):
            self.client.close()
            raise IdbenchError(
                f"the workers of {address} declare no 'device' resource, so no run could be "
                f"placed: start each worker with `dask worker {address} --nthreads 1 --resources "
                f"device=1` (one per GPU, with {DEVICE_ENV}=cuda:N)"
            )

    @property
    def slots(self) -> int:
        """Runs that execute at once: the workers there are (or are expected, for batch jobs)."""
        present = len(self.client.scheduler_info().get("workers", {}))
        return max(1, present, self._expected)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]`` on the workers, in order; blocks until all are done.

        Safe to call from several threads at once. Ctrl-C (or any error) cancels this call's
        outstanding runs before it propagates.
        """
        items = list(items)
        if not items:
            return []
        with self._lock:
            if self._cancelled:
                raise CancelledError("the dask executor was cancelled")
            futures = [self.client.submit(fn, item, resources={"device": 1}, pure=False)
                       for item in items]
            self._outstanding.update(futures)
        try:
            return self.client.gather(futures)
        except BaseException:
            self._cancel(futures)
            raise
        finally:
            with self._lock:
                self._outstanding.difference_update(futures)

    def cancel(self) -> None:
        """Cancel every outstanding run and refuse new ones (on Ctrl-C or a failed cell)."""
        with self._lock:
            self._cancelled = True
            futures = list(self._outstanding)
        self._cancel(futures)

    def _cancel(self, futures: list[Any]) -> None:
        try:
            self.client.cancel(futures, force=True)
        except Exception:  # the client may already be closing; nothing more to cancel then
            pass

    def close(self) -> None:
        self.cancel()
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _connect(address: str, timeout: float) -> Client:
    """A client of the scheduler at ``address``, or one clear error within ``timeout`` seconds."""
    try:
        # try the address alone first: a Client that fails to connect complains again when
        # garbage collected
        asyncio.run(_probe(address, timeout))
        return Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # OSError/TimeoutError when unreachable, ValueError when malformed
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IdbenchError(
            f"cannot reach the Dask scheduler at {address!r} ({reason}): check the address "
            "(e.g. tcp://host:8786) and that `dask scheduler` runs there, or leave out --scheduler "
            "to start a local cluster"
        ) from None


async def _probe(address: str, timeout: float) -> None:
    comm = await distributed.comm.connect(address, timeout=timeout)
    await comm.close()
