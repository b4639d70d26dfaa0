"""How fast idbench starts: the wall time of three commands and the modules each one imports.

    python benchmarks/startup.py [--runs 5] [--json-only]

Times, as whole processes (median of ``--runs`` after one warm-up run):

- ``idbench --help``
- ``idbench ls models``
- a rerun of a stored measurement: ``idbench measure ...`` into a folder where the same
  measurement was stored by an untimed first run, so nothing trains

and, from one extra run under ``python -X importtime``, the modules each command imports: how many,
which of the heavy optional libraries (timm, scikit-learn, dask, seaborn, matplotlib, optuna,
polars, torchvision, torch) among them, and the slowest top-level imports. Prints one JSON object.

Goal (issue 12) on an idle 2-core machine: ``--help`` under 1 s, the stored rerun under 3 s. The
figures depend on the machine's load: the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "torchvision", "timm", "sklearn", "scipy", "dask", "distributed", "seaborn",
         "matplotlib", "optuna", "polars", "pandas", "pyarrow")
# the stored measurement: small enough to train in a few seconds on one core
MEASURE = ["measure", "--model", "fc[depth=1,width=16]", "--dataset", "digits", "--seeds", "1",
           "--epochs", "1", "--tune-trials", "0", "--lr", "0.1", "--grid", "8,32", "--json"]


def idbench() -> list[str]:
    """The ``idbench`` console script of this Python, else ``python -m idbench.cli``."""
    script = Path(sys.executable).parent / "idbench"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "idbench.cli"]


def wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds one run of ``argv`` takes, start to exit; a failing command stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def imports(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    """The modules one run imports, from ``-X importtime`` (cumulative microseconds per module)."""
    done = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True,
                          text=True)
    cumulative: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, self_us, cum_us, name = (part.strip() for part in line.replace("import time:", "|", 1)
                                    .split("|"))
        if cum_us.isdigit():
            cumulative[name] = int(cum_us)
    roots = {name.split(".")[0] for name in cumulative}
    top = sorted(((n, us) for n, us in cumulative.items() if "." not in n),
                 key=lambda item: -item[1])[:8]
    return {
        "modules": len(cumulative),
        "heavy": sorted(root for root in roots if root in HEAVY),
        "slowest_top_level_s": {name: round(us / 1e6, 3) for name, us in top},
    }


def measure(argv: list[str], env: dict[str, str], runs: int) -> dict[str, object]:
    """Wall times of ``argv`` (``runs`` runs after a warm-up) and what it imports."""
    wall(argv, env)  # warm-up: the file cache, not the figure
    times = [wall(argv, env) for _ in range(runs)]
    return {
        "command": " ".join(["idbench", *argv[len(idbench()):]]),
        "wall_s": {"min": round(min(times), 3), "median": round(statistics.median(times), 3),
                   "max": round(max(times), 3)},
        "imports": imports(argv, env),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    args = parser.parse_args()
    base = idbench()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="idbench-startup-"))
    try:
        out = ["--out", str(workdir / "out")]
        first = time.perf_counter()
        wall([*base, *MEASURE, *out], env)  # stores the measurement (trains: not timed)
        first_s = time.perf_counter() - first
        results = {
            "help": measure([*base, "--help"], env, args.runs),
            "ls_models": measure([*base, "ls", "models"], env, args.runs),
            "stored_rerun": measure([*base, *MEASURE, *out], env, args.runs),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_before": [round(v, 2) for v in load_before],
                    "load_avg_after": [round(v, 2) for v in os.getloadavg()]},
        "runs_per_command": args.runs,
        "first_measure_s": round(first_s, 3),  # the run that stores it (trains; not a figure)
        **results,
    }, indent=2))


if __name__ == "__main__":
    main()
