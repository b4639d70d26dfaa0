"""Result rows built from what determined them: :func:`run_row` (one training run).

A run row is the run's :class:`~idbench.train.RunSpec` (every field under its own column, or the
column :data:`RUN_RENAMED` names), what the run reports about itself
(:class:`~idbench.runinfo.RunInfo`: the subspace and optimiser as built), its outcome and its
provenance. The measurement row of a cell is built the same way from its config
(:func:`idbench.measurement.config_columns`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from idbench.provenance import git_rev, now_iso, versions
from idbench.schema import RunRow
from idbench.theta0 import recorded_digest

if TYPE_CHECKING:
    from idbench.train import RunResult, RunSpec

RUN_RENAMED = {"steps": "steps_budget"}  # RunSpec fields stored under another column name
# RunSpec fields whose column holds what the run reports instead of the spec's value
FROM_RESULT = ("projection", "compartments", "optimizer", "momentum", "weight_decay")


def spec_columns(spec: RunSpec) -> dict[str, Any]:
    """Every field of ``spec`` under its column; specs by name (their options come separately)."""
    columns = {RUN_RENAMED.get(name, name): value for name, value in spec.recorded().items()
               if RUN_RENAMED.get(name, name) in RunRow.model_fields and name not in FROM_RESULT}
    columns["method"] = spec.method.name
    return columns


def run_row(
    spec: RunSpec,
    result: RunResult,
    *,
    cell: str,
    suite: str | None,
    role: str,
    metric: str,
    device: str,
) -> RunRow:
    """The store row of one finished run: the spec, the outcome and the provenance.

    Subspace columns (projection, normalisation, compartments, d_total...) and the optimiser come
    from what the run reports (``result.info``), so they record what was built rather than what
    was asked; the subspace columns are None for baseline runs. ``method_options`` holds the
    options of the method spec and those the method reports.
    """
    info = result.info
    method_options = {**spec.method.options, **info.method_options}
    subspace: dict[str, Any] = dict.fromkeys(
        ("projection", "normalisation", "compartments", "n_compartments", "d_total", "directions"))
    projection_options: dict[str, Any] = {}
    if info.subspace is not None:
        built = info.subspace
        assert spec.projection is not None, "a run that reports a subspace has a projection"
        projection_options = {**spec.projection.options, **built.projection_options}
        subspace = {"projection": built.projection, "normalisation": built.normalisation,
                    "compartments": built.compartments, "n_compartments": built.n_compartments,
                    "d_total": built.d_total, "directions": _json(list(built.directions))}
    optimiser = info.optimiser
    return RunRow(
        **spec_columns(spec), **subspace,
        run_key=spec.key(), cell=cell, suite=suite, role=role, D=info.D, metric=metric,
        projection_options=_json(projection_options), method_options=_json(method_options),
        optimizer=optimiser.name, momentum=optimiser.momentum,
        weight_decay=optimiser.weight_decay,
        val_score=result.val_score, val_loss=result.val_loss, test_score=result.test_score,
        train_loss=result.train_loss, diverged=result.diverged, retries=result.retries,
        lr_final=result.lr_final if result.lr_final is not None else spec.lr,
        theta0_sha256=recorded_digest(spec.theta0), theta0_head=result.theta0_head,
        stopped_early=result.stopped_early, pruned=result.pruned, steps=result.steps,
        wall_s=result.wall_s,
        grad_cosine=info.grad_cosine, **result.path_metrics,
        **{f"{space}_psi_windows": _json(psi) for space, psi in result.path_windows.items()},
        history=_json(result.history),
        device=device,
        threads=result.threads, versions=_json(versions()), git_rev=git_rev(),
        timestamp=now_iso(),
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
