"""Submit Dask workers to SLURM with dask-jobqueue, from a small YAML file.

``idbench run SUITE --executor dask --cluster-config cluster.yaml`` starts a scheduler in the
idbench process and submits ``jobs`` batch jobs, each running one worker per GPU (or one worker
when ``gpus`` is 0)::

    # cluster.yaml
    slurm:
      queue: gpu              # -p
      account: my-project     # -A
      cores: 16               # CPUs per job
      memory: 64GB            # per job
      walltime: "04:00:00"    # -t
      gpus: 2                 # per job: --gres=gpu:2 and two workers, one per GPU
      jobs: 4                 # batch jobs to submit: 8 workers in all
      # any other dask_jobqueue.SLURMCluster option, e.g.
      job_extra_directives: ["--constraint=a100"]
      job_script_prologue: ["source /path/to/venv/bin/activate"]

Every worker declares the resource ``device=1`` (runs ask for it), so each trains one run at a
time on its own GPU. ``idbench run SUITE --cluster-config cluster.yaml --dry-run`` prints the job
script (:func:`job_script`) without submitting anything.
"""

from __future__ import annotations

import difflib
import inspect
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import yaml

from idbench.errors import IdbenchError

IDBENCH_KEYS = {"gpus", "jobs"}  # ours; everything else goes to SLURMCluster


def _require() -> None:
    """Import dask-jobqueue, keeping this process's Ctrl-C handling: importing it replaces the
    SIGINT handler with one that exits at once (dask_jobqueue/runner.py), which would skip the
    cancelling of outstanding runs."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        from idbench.workers import DASK_HINT

        raise IdbenchError(f"--cluster-config needs dask-jobqueue: {DASK_HINT}") from None
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


def _slurm_options() -> list[str]:
    _require()
    from dask_jobqueue.core import Job, JobQueueCluster
    from dask_jobqueue.slurm import SLURMJob

    internal = {"self", "scheduler", "loop", "job_cls", "asynchronous", "n_workers", "config_name",
                "base_class_kwargs", "job_kwargs", "scheduler_cls",
                "extra", "env_extra", "job_extra", "header_skip", "project"}  # deprecated names
    names = set()
    for function in (JobQueueCluster.__init__, Job.__init__, SLURMJob.__init__):
        names |= {p.name for p in inspect.signature(function).parameters.values()
                  if p.kind is not p.VAR_KEYWORD}
    return sorted(names - internal)


def load_cluster_config(path: str | Path) -> dict[str, Any]:
    """The ``slurm:`` settings of a cluster config file, checked (unknown keys are refused)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IdbenchError(f"cannot read cluster config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise IdbenchError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("slurm"), dict) or len(data) != 1:
        raise IdbenchError(
            f"{path}: a cluster config holds one mapping `slurm:` of dask-jobqueue settings "
            "(queue, account, cores, memory, walltime, gpus, jobs, ...); see idbench.slurm"
        )
    settings = dict(data["slurm"])
    valid = sorted(IDBENCH_KEYS | set(_slurm_options()))
    for key in settings:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise IdbenchError(f"{path}: unknown key {key!r} in slurm{hint}; valid keys: "
                               f"{', '.join(valid)}")
    for key in ("gpus", "jobs"):
        value = settings.get(key, 0 if key == "gpus" else 1)
        if not isinstance(value, int) or value < (0 if key == "gpus" else 1):
            raise IdbenchError(f"{path}: slurm.{key} must be a whole number "
                               f"{'>= 0' if key == 'gpus' else '>= 1'}, got {value!r}")
    for key in ("cores", "memory"):
        if key not in settings:
            raise IdbenchError(f"{path}: slurm.{key} is missing (CPUs and memory per job, e.g. "
                               "cores: 8, memory: 32GB)")
    return settings


def cluster_options(settings: dict[str, Any], *, retries: int = 2) -> tuple[dict[str, Any], int]:
    """(SLURMCluster keyword arguments, number of jobs) of checked ``settings``."""
    options = {k: v for k, v in settings.items() if k not in IDBENCH_KEYS}
    gpus, jobs = settings.get("gpus", 0), settings.get("jobs", 1)
    options.setdefault("processes", max(gpus, 1))  # one worker per GPU
    if gpus:
        options["job_extra_directives"] = [*options.get("job_extra_directives", []),
                                           f"--gres=gpu:{gpus}"]
    options["worker_extra_args"] = [*options.get("worker_extra_args", []),
                                    "--resources", "device=1"]
    options["scheduler_options"] = {"dashboard_address": ":0", "allowed_failures": retries,
                                    **options.get("scheduler_options", {})}
    options.setdefault("job_name", "idbench-worker")
    return options, jobs


def _cluster(settings: dict[str, Any], retries: int) -> tuple[Any, int]:
    _require()
    from dask_jobqueue import SLURMCluster

    options, jobs = cluster_options(settings, retries=retries)
    try:
        return SLURMCluster(**options), jobs
    except (TypeError, ValueError) as exc:
        raise IdbenchError(f"bad slurm settings in the cluster config: {exc}") from None


def job_script(settings: dict[str, Any]) -> str:
    """The batch script each job runs (``#SBATCH`` lines and the worker command); needs no SLURM."""
    cluster, _ = _cluster(settings, retries=2)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def start(settings: dict[str, Any], *, retries: int = 2) -> tuple[Any, int]:
    """(the cluster, expected workers) after submitting the jobs; needs ``sbatch`` on the PATH."""
    if shutil.which("sbatch") is None:
        raise IdbenchError(
            "--cluster-config submits workers with sbatch, which is not on the PATH: run idbench "
            "on a SLURM login node, or drop --cluster-config to use this machine's cores and GPUs"
        )
    cluster, jobs = _cluster(settings, retries)
    cluster.scale(jobs=jobs)
    processes = cluster_options(settings)[0]["processes"]
    return cluster, jobs * processes
