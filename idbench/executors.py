"""Where training runs execute: in this process (``local``, the default) or on a cluster.

An executor maps a picklable function over independent training runs and returns the results in
order. The measurement code hands it every seed of one probe at once, so seeds run in parallel on a
distributed executor while the d search itself stays sequential.
"""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

from idbench.registry import Registry

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """Runs everything in the calling process, one run after the other."""

    name = "local"

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return [fn(item) for item in items]

    def close(self) -> None:
        pass


EXECUTORS: Registry = Registry("executor")
EXECUTORS.register("local")(LocalExecutor)


def create(spec: str = "local", **options) -> LocalExecutor:
    """The executor named by ``spec`` (``local``)."""
    return EXECUTORS.create(spec, **options)


__all__ = ["EXECUTORS", "LocalExecutor", "create"]
