"""idbench: measure the intrinsic dimension of neural-network training objectives.

    import idbench
    row = idbench.measure(idbench.MeasureConfig(model="fc", dataset="fashion-mnist",
                                                projection="fastfood"), out="out")
    idbench.run_suite("suites/quickstart.yaml")

The heavy modules load on first use, so ``import idbench`` stays cheap.
"""

from __future__ import annotations

import importlib
import os

# OpenMP threads that spin while waiting make small training steps tens of times slower whenever
# another process shares the cores (measured: 5.3 s against 0.34 s for the same digits run).
# Set before torch loads; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from typing import Any

from idbench.errors import IdbenchError

__version__ = "0.1.0"

_LAZY = {
    "measure": ("idbench.measurement", "measure"),
    "MeasureConfig": ("idbench.config", "MeasureConfig"),
    "run_suite": ("idbench.runner", "run_suite"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'idbench' has no attribute {name!r}")


__all__ = ["IdbenchError", "MeasureConfig", "__version__", "measure", "run_suite"]
