"""The SLURM job script generated from a cluster config, checked without SLURM."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

# (not importorskip: importing dask_jobqueue directly would replace the Ctrl-C handler of the
# whole test session; idbench.slurm imports it with the handler kept)
if importlib.util.find_spec("dask_jobqueue") is None:
    pytest.skip("dask-jobqueue is not installed (the dask extra)", allow_module_level=True)

from idbench import slurm  # noqa: E402
from idbench.errors import IdbenchError  # noqa: E402

pytestmark = pytest.mark.executor

CONFIG = """
slurm:
  queue: gpu
  account: my-project
  cores: 16
  memory: 64GB
  walltime: "04:00:00"
  gpus: 2
  jobs: 3
  job_extra_directives: ["--constraint=a100"]
  job_script_prologue: ["source /opt/venv/bin/activate"]
"""


def test_job_script_has_the_settings_as_sbatch_lines(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(CONFIG)
    settings = slurm.load_cluster_config(path)
    script = slurm.job_script(settings)
    lines = script.splitlines()
    assert lines[0].startswith("#!")
    for expected in ("#SBATCH -J idbench-worker", "#SBATCH -p gpu", "#SBATCH -A my-project",
                     "#SBATCH --cpus-per-task=16", "#SBATCH -t 04:00:00",
                     "#SBATCH --constraint=a100", "#SBATCH --gres=gpu:2",
                     "source /opt/venv/bin/activate"):
        assert expected in lines, expected
    assert any(line.startswith("#SBATCH --mem=") for line in lines)
    worker = lines[-1]
    # one worker per GPU, each declaring the device resource that every run asks for
    assert "distributed.cli.dask_worker" in worker and "--nworkers 2" in worker
    assert "--nthreads 8" in worker and "--resources device=1" in worker
    options, jobs = slurm.cluster_options(settings)
    assert jobs == 3 and options["processes"] == 2


def test_dry_run_prints_the_job_script(tmp_path):
    (tmp_path / "cluster.yaml").write_text(CONFIG)
    (tmp_path / "s.yaml").write_text(
        'version: "1"\ndefaults: {epochs: 1}\ngrids: [{models: [fc], datasets: [digits]}]\n')
    done = subprocess.run(
        [sys.executable, "-m", "idbench.cli", "run", "s.yaml", "--executor", "dask",
         "--cluster-config", "cluster.yaml", "--dry-run"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "#SBATCH --gres=gpu:2" in done.stdout


@pytest.mark.parametrize("text, message", [
    ("slurm: {cores: 4, memroy: 8GB}", "unknown key 'memroy' in slurm (did you mean 'memory'?)"),
    ("slurm: {cores: 4}", "slurm.memory is missing"),
    ("slurm: {cores: 4, memory: 8GB, gpus: -1}", "slurm.gpus must be a whole number"),
    ("pbs: {cores: 4}", "one mapping `slurm:`"),
])
def test_bad_cluster_configs_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(IdbenchError, match=re.escape(message)):
        slurm.load_cluster_config(path)


def test_submitting_needs_sbatch(tmp_path, monkeypatch):
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    with pytest.raises(IdbenchError, match="sbatch, which is not on the PATH"):
        slurm.start({"cores": 1, "memory": "1GB"})
