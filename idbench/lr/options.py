"""The options that concern learning rates: how they are tuned, where, and how they are carried.

:class:`RateOptions` is a part of :class:`~idbench.config.MeasureConfig` (its fields are the
config's own: a suite or the command line sets them like any other). The strategies that read
them are in :mod:`idbench.lr.protocols`, the tuner in :mod:`idbench.lr.tuner`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator


LR_WINDOW = 10.0  # a subspace tuning searches within this factor of the baseline's rate carried
# to its d (idbench.lr.carry.tuning_range)
WINDOW_MOVES = 2  # under tune_every_probe, how often a tuning whose best trial is the lowest or
# highest rate tried moves its window one width past that end (idbench.lr.tuner.Tuner.tune)

# options removed, and what replaced each: a suite or a stored config that names one is refused
REMOVED = {
    "lr_protocol": "the rate is tuned at d_ref and re-tuned at the bracket (the former "
                   "'bracket'); set tune_trials: 0 for fixed rates",
    "retune_restart": "a search after a re-tuning restarts on the lattice d_min x 2^k (the "
                      "former 'lattice')",
    "lr_window": f"a subspace tuning searches within x{LR_WINDOW:g} of the baseline's rate "
                 "carried to its d (the former default)",
    "tune_pick": "a tuning returns its best trial (the former 'best')",
    "tune_redraw": "tune_draw redraws every tuning (the former 'all')",
}


def powers_of_two(lr_range: tuple[float, float]) -> list[float]:
    """Every power of two in ``lr_range`` (ends included), smallest first."""
    low = math.ceil(math.log2(lr_range[0]) - 1e-9)
    high = math.floor(math.log2(lr_range[1]) + 1e-9)
    return [2.0 ** k for k in range(low, high + 1)]


def removed_message(name: str) -> str:
    """One line: ``name`` is no longer an option, and what replaced it."""
    return f"option {name} was removed: {REMOVED[name]}; drop it"


class RateOptions(BaseModel):
    """The learning-rate options of a cell (a base of MeasureConfig, which adds the optimiser and
    method these rules depend on)."""

    # learning-rate tuning (Optuna)
    tune_trials: int = Field(8, ge=0, description="Optuna trials per tuned lr; 0: use lr and "
                             "lr_subspace as given")
    tune_seeds: int = Field(1, ge=1, description="seeds per tuning trial (objective: their mean "
                            "final validation loss); one, as each of the default draws tunes "
                            "anew")
    # research: another draw of every tuning of the cell (the baseline's too, so the threshold
    # moves with it), to measure how far the tuner's draw moves d_int
    tune_draw: int = Field(0, ge=0, description="which draw of the tuner: another number places "
                           "its grid trials elsewhere in their bins and gives TPE other proposals, "
                           "to measure how far the tuner's draw moves d_int, which the CI over "
                           "seeds does not include")
    # research: the random-bases study tuned every rate on powers of two
    tune_grid: Literal["log", "pow2"] = Field(
        "log", description="where tuning trials lie: log (an even log grid, then TPE) or pow2 "
        "(powers of two in the range, spread evenly, up to tune_trials of them; no TPE)")
    tune_every_probe: bool = Field(False, description="tune the subspace lr at every probe "
                                   "instead of once at d_ref")
    d_ref: int | None = Field(None, ge=1, description="where the subspace lr is tuned (default: "
                              "geometric middle of the range)")
    lr: float = Field(0.1, gt=0, description="baseline lr when not tuned")
    lr_subspace: float | None = Field(None, gt=0, description="subspace lr when not tuned "
                                      "(default: lr)")
    lr_range: tuple[float, float] = Field(
        (1e-3, 10.0), description="tuning range of the baseline lr (and of a global baseline's "
        "subspace lr)")
    # how the subspace lr tuned at d_ref carries to other d. With unit-norm columns E[P P^T] =
    # (d/D) I, so an SGD step moves theta by lr * d / D times the gradient: "inverse-d" keeps that
    # constant; Adam's per-coordinate steps move theta by ~lr * sqrt(d): "inverse-sqrt-d".
    # "auto" picks by optimizer (and inverse-d for rbd/nes, which take plain SGD steps).
    lr_scaling: Literal["auto", "none", "inverse-d", "inverse-sqrt-d"] = Field(
        "auto", description="how the subspace lr tuned at d_ref carries to other d")
    # research: re-tune once the crossing lies further than this factor from where the rate was
    # tuned (a rate carried much further can sit far from the best rate near the crossing; the
    # evidence for x1.5 is in benchmarks/protocol_check.md)
    lr_retune_factor: float = Field(
        1.5, gt=1, description="re-tune the subspace lr where the crossing lies further than "
        "this factor from where it was tuned")
    # ngd's damping tuned with the rate (idbench.tuning): one joint Optuna study of lr and
    # log-damping per tuned rate; the probes train at the damping of the last subspace tuning
    damping_range: tuple[float, float] | None = Field(
        None, description="ngd: tune the damping lambda jointly with the lr, log-uniformly in "
        "this range; None: fixed at ngd_damping")

    @property
    def retunes_at_bracket(self) -> bool:
        """Whether the subspace lr is re-tuned where the search brackets the crossing
        (idbench.lr.protocols.TunedAtBracket): not when every probe is tuned, untuned rates have
        nothing to re-tune, and a grid has no bracket to narrow."""
        return self.tune_trials > 0 and not self.tune_every_probe and not self.grid

    @model_validator(mode="after")
    def _rates(self) -> "RateOptions":
        lo, hi = self.lr_range
        if not 0 < lo < hi:
            raise ValueError("lr_range must be (low, high) with 0 < low < high")
        if self.damping_range is not None:
            lo, hi = self.damping_range
            if not 0 < lo < hi:
                raise ValueError("damping_range must be (low, high) with 0 < low < high")
            if self.tune_grid == "pow2":
                raise ValueError("tune_grid pow2 tunes the rate alone: drop damping_range, or "
                                 "tune on the log grid")
        if self.tune_grid == "pow2" and not powers_of_two(self.lr_range):
            raise ValueError(f"tune_grid pow2: lr_range {list(self.lr_range)} holds no power of "
                             "two; widen it")
        return self

    @field_validator("lr_scaling", mode="before")
    @classmethod
    def _no_curvature(cls, value: Any) -> Any:
        if value == "curvature":
            raise ValueError("lr_scaling curvature was removed: a rate is carried by auto, none, "
                             "inverse-d or inverse-sqrt-d; drop it (auto) or choose one of these")
        return value

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, values: Any) -> Any:
        """An option that no longer exists is named with what replaced it, never ignored."""
        for name in REMOVED:
            if isinstance(values, dict) and name in values:
                raise ValueError(removed_message(name))
        return values

    @property
    def resolved_lr_scaling(self) -> str:
        """The lr scaling rule in force (``auto`` resolved)."""
        if self.lr_scaling != "auto":
            return self.lr_scaling
        # ngd is SGD on a preconditioned gradient: outside the few directions its Fisher sketch
        # spans, its step is the SGD step scaled by 1 / damping
        plain_sgd = self.optimizer in ("sgd", "ngd") or self.method.name != "fpd"
        return "inverse-d" if plain_sgd else "inverse-sqrt-d"

    def subspace_lr(self, lr_ref: float, d_ref: int, d: int) -> float:
        """The learning rate at ``d`` given the one tuned at ``d_ref``, by the scaling rule."""
        rule = self.resolved_lr_scaling
        if rule == "inverse-d":
            return lr_ref * d_ref / d
        if rule == "inverse-sqrt-d":
            return lr_ref * (d_ref / d) ** 0.5
        return lr_ref
