"""The dask executor: same leaderboard as local, device slots, worker deaths, cancel, bad input."""

from __future__ import annotations

import _thread
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import pytest
import torch

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402  (comes with distributed)

import idbench.executors as executors  # noqa: E402
import idbench.workers as workers  # noqa: E402
from idbench.config import MeasureConfig  # noqa: E402
from idbench.dask_executor import DaskExecutor  # noqa: E402
from idbench.errors import IdbenchError  # noqa: E402
from idbench.measurement import measure  # noqa: E402
from idbench.runner import run_suite  # noqa: E402
from idbench.store import RunStore  # noqa: E402

pytestmark = pytest.mark.executor

# the helpers below run on the workers, which cannot import this test file: ship them by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def dask_cpu():
    """Two local CPU workers, each training with this process's torch threads (set through
    IDBENCH_WORKER_THREADS, so that results equal the in-process reference's even where two
    workers at that count oversubscribe the cores, as on a 2-core machine)."""
    saved = os.environ.get("IDBENCH_WORKER_THREADS")
    os.environ["IDBENCH_WORKER_THREADS"] = str(torch.get_num_threads())
    try:
        with DaskExecutor(workers=2, device="cpu") as executor:
            yield executor
    finally:
        if saved is None:
            del os.environ["IDBENCH_WORKER_THREADS"]
        else:
            os.environ["IDBENCH_WORKER_THREADS"] = saved


def test_local_and_dask_give_the_same_leaderboard(reference, tiny_suite, dask_cpu, tmp_path,
                                                  lb_rows):
    _, ref_lb, ref = reference
    result = run_suite(tiny_suite, out=tmp_path / "out", leaderboard_dir=tmp_path / "lb",
                       device="cpu", executor=dask_cpu)
    assert lb_rows(tmp_path / "lb").equals(lb_rows(ref_lb))
    runs = RunStore(tmp_path / "out").table().sort("run_key")
    ref_runs = RunStore(ref_lb.parent / "out").table().sort("run_key")
    assert runs["run_key"].to_list() == ref_runs["run_key"].to_list()  # the very same runs
    assert runs["val_score"].to_list() == ref_runs["val_score"].to_list()
    assert set(runs["device"]) == {"cpu"}
    # the workers train with this process's thread count, so equal keys give equal results
    assert set(runs["threads"]) == set(ref_runs["threads"]) == {torch.get_num_threads()}
    assert [m.d_int for m in result.measurements] == [m.d_int for m in ref.measurements]


def test_a_pooled_cells_draws_measured_at_once_on_dask_equal_the_local_measurement(dask_cpu,
                                                                                    tmp_path):
    config = MeasureConfig(model="fc[depth=1,width=16]", dataset="digits", projection="sparse",
                           draws=2, seeds=1, epochs=2, tune_trials=2, tune_seeds=1, d_min=16,
                           d_max=1200, resolution=0.5)
    local = measure(config, out=tmp_path / "local", device="cpu")
    remote = measure(config, out=tmp_path / "dask", device="cpu", executor=dask_cpu)
    assert None not in json.loads(local.draw_d_ints)  # both draws found a crossing
    assert remote.draw_d_ints == local.draw_d_ints  # each draw the same, whoever trained it
    assert (remote.d_int, remote.ci_low, remote.ci_high) == (local.d_int, local.ci_low,
                                                              local.ci_high)
    runs = RunStore(tmp_path / "dask").table()
    assert sorted(runs["run_key"]) == sorted(RunStore(tmp_path / "local").table()["run_key"])


def test_the_same_cluster_is_reachable_by_scheduler_address(dask_cpu):
    with executors.create("dask", scheduler=dask_cpu.cluster.scheduler_address) as remote:
        assert remote.slots == 2
        assert sorted(remote.map(_square, [3, 1, 2])) == [1, 4, 9]


def _square(x: int) -> int:
    return x * x


def _torch_threads(_: int) -> int:
    return torch.get_num_threads()


def test_cpu_workers_share_the_cores_instead_of_oversubscribing_them(monkeypatch):
    """Two CPU workers at this process's 2 threads on 2 cores would run 4 threads: each gets 1,
    with one warning; IDBENCH_WORKER_THREADS unset (it would set the count itself)."""
    from idbench import dask_executor

    assert dask_executor.worker_threads(2, 2, 2) == 1
    assert dask_executor.worker_threads(1, 2, 2) == 2
    assert dask_executor.worker_threads(3, 1, 2) == 1  # more workers than cores: 1 each
    assert dask_executor.worker_threads(2, 8, 16) == 8
    assert dask_executor.worker_threads(4, 8, 16) == 4
    monkeypatch.delenv("IDBENCH_WORKER_THREADS", raising=False)
    monkeypatch.setattr(dask_executor, "cpu_cores", lambda: 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    with contextlib.ExitStack() as stack:
        stack.callback(torch.set_num_threads, threads)
        with pytest.warns(UserWarning, match="2 CPU workers x 2 torch threads would oversubscribe "
                                             "2 cores: each worker trains with 1"):
            executor = stack.enter_context(DaskExecutor(workers=2, device="cpu"))
        assert executor.map(_torch_threads, [0, 1, 2, 3]) == [1, 1, 1, 1]


def _occupy(job: tuple[str, float]) -> tuple[str | None, int, float, float]:
    """A fake run: which device it saw, in which process, from when to when."""
    start = time.monotonic()
    time.sleep(job[1])
    return workers.worker_device(), os.getpid(), start, time.monotonic()


def test_concurrent_runs_never_exceed_the_slots_and_each_sees_its_own_device():
    with DaskExecutor(devices=["fake:0", "fake:1"]) as executor:
        assert executor.slots == 2
        results: list = []

        def cell(name: str) -> None:  # two cells at once, as run_suite does
            results.extend(executor.map(_occupy, [(f"{name}{i}", 0.3) for i in range(4)]))

        threads = [threading.Thread(target=cell, args=(n,)) for n in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 8
    assert {device for device, *_ in results} == {"fake:0", "fake:1"}
    by_process = {}
    for device, pid, *_ in results:
        assert by_process.setdefault(pid, device) == device  # a worker keeps its device
    for device, _, start, end in results:
        # the runs in flight at this run's start: at most the two slots, on distinct devices
        running = [d for d, _, s, e in results if s <= start < e]
        assert len(running) <= 2 and len(set(running)) == len(running), running
    # (clocks: time.monotonic is system-wide on Linux, so workers' intervals compare)


def _kill_first(fn, marker_dir: str, job):
    """Run ``fn(job)``, except that the very first run anywhere kills its own worker."""
    marker = Path(marker_dir)
    key = job[0].key()
    (marker / f"attempt-{key}-{os.getpid()}-{time.monotonic_ns()}").touch()
    try:
        (marker / "killed").open("x").write(key)  # atomic: exactly one run gets here
    except FileExistsError:
        return fn(job)
    os._exit(1)  # the worker process dies mid-run; its nanny starts a new one


class _Killing:
    """The dask executor with the first run killing its worker."""

    in_process = False

    def __init__(self, inner: DaskExecutor, marker_dir: Path) -> None:
        self.inner, self.marker_dir, self.slots = inner, str(marker_dir), inner.slots

    def map(self, fn, items):
        return self.inner.map(functools.partial(_kill_first, fn, self.marker_dir), items)


def test_a_run_that_kills_its_worker_is_retried_and_stored_once(dask_cpu, tmp_path, monkeypatch):
    puts: list[str] = []
    real_put = RunStore.put
    monkeypatch.setattr(RunStore, "put", lambda self, row: puts.append(row.run_key)
                        or real_put(self, row))
    config = MeasureConfig(draws=1, model="fc[depth=1,width=16]", dataset="digits", projection="fastfood",
                           seeds=2, epochs=2, tune_trials=0, lr=0.1, grid=(16, 64), d_max=1200)
    markers = tmp_path / "markers"
    markers.mkdir()
    row = measure(config, out=tmp_path / "out", device="cpu", executor=_Killing(dask_cpu, markers))
    killed = (markers / "killed").read_text()
    attempts = [p.name for p in markers.glob(f"attempt-{killed}-*")]
    assert len(attempts) == 2  # killed once, then retried on a (restarted) worker
    assert len({a.split("-")[2] for a in attempts}) == 2  # by two different worker processes
    assert sorted(puts) == sorted(set(puts)) and killed in puts  # each run recorded exactly once
    stored = RunStore(tmp_path / "out").table()
    assert stored.height == len(puts) == row.n_runs == 6  # 2 baseline + 2 x 2 probes


def test_an_interrupted_suite_cancels_its_runs_and_leaves_a_store_that_resumes(
    reference, tiny_suite, dask_cpu, tmp_path, lb_rows
):
    """Ctrl-C (here: at the first failing probe) cancels outstanding runs; the store stays
    readable and a resumed run (here local) ends with the uninterrupted leaderboard. Runs last:
    the cancelled executor takes no more work.

    Driven by events, not timing: the cell that sends Ctrl-C waits until the main thread's SIGINT
    handler has run, so the suite cannot finish in between, whatever the load."""
    _, ref_lb, _ = reference
    received = threading.Event()

    def ctrl_c(signum, frame):  # Python's default SIGINT handler, which also says it ran
        received.set()
        raise KeyboardInterrupt

    def on_event(message: str) -> None:  # called in a cell's thread
        if message.startswith("probe d=") and message.endswith("(fail)") and not received.is_set():
            _thread.interrupt_main()  # what Ctrl-C does: SIGINT, handled in the main thread
            received.wait(120)  # a guard against a hang only: the handler sets it at once

    previous = signal.signal(signal.SIGINT, ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_suite(tiny_suite, out=tmp_path / "out", leaderboard_dir=tmp_path / "lb",
                      device="cpu", executor=dask_cpu, on_event=on_event)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert received.is_set()
    with pytest.raises(CancelledError):
        dask_cpu.map(_square, [1])
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".tmp")]
    stored = RunStore(tmp_path / "out").table()  # every file complete and readable
    assert 0 < stored.height < RunStore(ref_lb.parent / "out").table().height
    run_suite(tiny_suite, out=tmp_path / "out", leaderboard_dir=tmp_path / "lb", device="cpu",
              resume=True)
    assert lb_rows(tmp_path / "lb").equals(lb_rows(ref_lb))


# bad input: one clear error with the fix, before any cluster starts or anything trains


def test_unknown_executor_names_the_valid_ones(tiny_suite, tmp_path):
    with pytest.raises(IdbenchError, match="Did you mean 'dask'"):
        executors.create("dsak")
    with pytest.raises(IdbenchError, match="--workers: only for a Dask cluster"):
        executors.create("local", workers=2)
    done = subprocess.run(
        [sys.executable, "-m", "idbench.cli", "run", str(tiny_suite), "--out", "out",
         "--executor", "nosuch"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "unknown executor 'nosuch'" in done.stderr and "dask, local" in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "leaderboards").exists()


def test_dask_without_its_packages_says_how_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "idbench.dask_executor")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(IdbenchError, match=r"pip install 'idbench\[dask\]'"):
        executors.create("dask", workers=2)


def test_unreachable_scheduler_fails_within_seconds(tiny_suite, tmp_path):
    start = time.monotonic()
    with pytest.raises(IdbenchError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1"):
        run_suite(tiny_suite, out=tmp_path / "out", device="cpu", executor="dask",
                  executor_options={"scheduler": "tcp://127.0.0.1:1", "timeout": 2})
    assert time.monotonic() - start < 15
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_scheduler_whose_workers_have_no_device_resource_is_refused():
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        with pytest.raises(IdbenchError, match="--resources device=1"):
            executors.create("dask", scheduler=cluster.scheduler_address)


def test_storage_url_without_its_driver_fails_before_training(tiny_suite, tmp_path):
    pytest.importorskip("sqlalchemy")
    with pytest.raises(IdbenchError, match="cannot open tuning storage 'postgresql"):
        run_suite(tiny_suite, out=tmp_path / "out", device="cpu",
                  storage="postgresql://idbench@127.0.0.1:1/studies")
    assert not (tmp_path / "out").exists()


def test_local_workers_get_one_gpu_each_unless_asked_to_share(monkeypatch):
    import torch

    from idbench import dask_executor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert dask_executor.local_devices(None, None) == ["cuda:0", "cuda:1", "cuda:2"]
    assert dask_executor.local_devices(2, None) == ["cuda:0", "cuda:1"]
    assert dask_executor.local_devices(4, None) == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    assert dask_executor.local_devices(None, "cuda:1") == ["cuda:1"]
    threads = torch.get_num_threads()  # each worker trains with this process's threads
    assert dask_executor.local_devices(None, "cpu") == ["cpu"] * max(
        1, dask_executor.cpu_cores() // threads)
    # a worker started by dask-jobqueue with two processes per job: <job>-<i> takes GPU i
    assert dask_executor._auto("idbench-worker-7-1") == "cuda:1"
    assert dask_executor._auto("tcp-worker") == "cuda:0"
    plugin = dask_executor.DevicePlugin(["cuda:0", "cuda:1"])
    assert plugin._assigned(1) == "cuda:1" and plugin._assigned("x") is None
    with pytest.raises(IdbenchError, match="at least 1"):
        dask_executor.local_devices(0, None)
