"""The options that concern learning rates: how they are tuned, where, and how they are carried.

:class:`RateOptions` is a part of :class:`~idbench.config.MeasureConfig` (its fields are the
config's own: a suite or the command line sets them like any other). The strategies that read
them are in :mod:`idbench.lr.protocols`, the tuner in :mod:`idbench.lr.tuner`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator


class RateOptions(BaseModel):
    """The learning-rate options of a cell (a base of MeasureConfig, which adds the optimiser and
    method these rules depend on)."""

    # learning-rate tuning (Optuna)
    tune_trials: int = Field(8, ge=0, description="Optuna trials per tuned lr; 0: use lr and "
                             "lr_subspace as given")
    tune_seeds: int = Field(2, ge=1, description="seeds per tuning trial (objective: their mean "
                            "final validation loss)")
    tune_draw: int = Field(0, ge=0, description="which draw of the tuner: another number places "
                           "its grid trials elsewhere in their bins and gives TPE other proposals, "
                           "to measure how far the tuner's draw moves d_int, which the CI over "
                           "seeds does not include")
    # which tunings another draw redraws: "all" (the baseline's too, so the threshold moves with
    # it) or "subspace" (the baseline tuned as draw 0's, so a protocol is read at one threshold)
    tune_redraw: Literal["all", "subspace"] = Field(
        "all", description="tune_draw: redraw every tuning (all) or the subspace rate's only, "
        "the baseline tuned as draw 0's (subspace)")
    # which rate a tuning returns (idbench.tuning.fitted_rate): "best", its trial of lowest loss,
    # or "fit", the minimum of a parabola in log lr through the trials near it, which does not
    # jump between near-tied grid trials from one tuner draw to the next
    tune_pick: Literal["best", "fit"] = Field(
        "best", description="the tuned rate: the trial of lowest loss (best) or the minimum of a "
        "parabola in log lr fitted to the trials within a decade of it (fit)")
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
    # "curvature": lr_d = lr_t * lambda_t / lambda_d, lambda = lambda_max(P^T H P) at theta0
    # (idbench.lr.carry.Carry; a failed estimate falls back to what "auto" picks)
    lr_scaling: Literal["auto", "none", "inverse-d", "inverse-sqrt-d", "curvature"] = Field(
        "auto", description="how the subspace lr tuned at d_ref carries to other d")
    # where the subspace lr is tuned (idbench.lr.protocols): "reference" once at d_ref;
    # "bracket" at d_ref, then again near the crossing once the search has bracketed it
    lr_protocol: Literal["reference", "bracket"] = Field(
        "bracket", description="tune the subspace lr once at d_ref (reference) or also where "
        "the search brackets the crossing (bracket)")
    # bracket: re-tune once the crossing lies further than this factor from where the rate was
    # tuned (a rate carried much further can sit far from the best rate near the crossing; the
    # evidence for x1.5 is in benchmarks/protocol_check.md)
    lr_retune_factor: float = Field(
        1.5, gt=1, description="lr_protocol bracket: re-tune the subspace lr where the crossing "
        "lies further than this factor from where it was tuned")
    # bracket: where the search starts again after a re-tuning. "lattice": at the d_min x 2^k
    # below half the bracket's lower end, so that it probes the d the first search and
    # tune-every-probe probe (idbench.lr.protocols.on_lattice); "half": at half the lower end
    # itself (the protocol before this field)
    retune_restart: Literal["lattice", "half"] = Field(
        "lattice", description="lr_protocol bracket: after a re-tuning, search again from the "
        "d_min x 2^k below half the bracket's lower end (lattice) or from that half (half)")
    # subspace lr tuned within [prior / w, prior * w], prior = the tuned baseline lr carried from
    # d = D to d_ref by lr_scaling; None: the whole lr_range (also with a global baseline)
    lr_window: float | None = Field(10.0, gt=1, description="tune the subspace lr within this "
                                    "factor of the baseline lr carried to d_ref; None: lr_range")

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
        return (self.lr_protocol == "bracket" and self.tune_trials > 0
                and not self.tune_every_probe and not self.grid)

    def draw_at(self, d: int | None) -> int:
        """The tuner's draw of the tuning at ``d`` (None: the baseline's): ``tune_draw``, but
        draw 0 for the baseline when ``tune_redraw`` is ``subspace``."""
        return 0 if d is None and self.tune_redraw == "subspace" else self.tune_draw

    @model_validator(mode="after")
    def _rates(self) -> "RateOptions":
        lo, hi = self.lr_range
        if not 0 < lo < hi:
            raise ValueError("lr_range must be (low, high) with 0 < low < high")
        if self.damping_range is not None:
            lo, hi = self.damping_range
            if not 0 < lo < hi:
                raise ValueError("damping_range must be (low, high) with 0 < low < high")
        if self.tune_redraw != "all" and not self.tune_draw:
            raise ValueError("tune_redraw: subspace redraws the subspace tuning of another draw: "
                             "set tune_draw to 1 or more, or drop tune_redraw")
        if self.tune_pick == "fit" and self.damping_range is not None:
            raise ValueError("tune_pick: fit fits the rate alone, and damping_range tunes the "
                             "damping with it: use tune_pick best, or drop damping_range")
        return self

    @property
    def resolved_lr_scaling(self) -> str:
        """The lr scaling rule in force (``auto`` resolved)."""
        if self.lr_scaling != "auto":
            return self.lr_scaling
        # ngd is SGD on a preconditioned gradient: outside the few directions its Fisher sketch
        # spans, its step is the SGD step scaled by 1 / damping
        plain_sgd = self.optimizer in ("sgd", "ngd") or self.method.name != "fpd"
        return "inverse-d" if plain_sgd else "inverse-sqrt-d"

    @property
    def fallback_lr_scaling(self) -> str:
        """The rule ``auto`` picks: what ``curvature`` carrying falls back to where no estimate is
        available (the tuning window's prior from d = D, a failed estimate)."""
        return self.model_copy(update={"lr_scaling": "auto"}).resolved_lr_scaling

    def subspace_lr(self, lr_ref: float, d_ref: int, d: int, rule: str | None = None) -> float:
        """The learning rate at ``d`` given the one tuned at ``d_ref``, by ``rule`` (default: the
        config's; ``curvature`` needs the estimates of idbench.lr.carry.Carry)."""
        rule = rule or self.resolved_lr_scaling
        if rule == "curvature":
            raise ValueError("curvature carrying needs lambda_max: use idbench.lr.carry.Carry")
        if rule == "inverse-d":
            return lr_ref * d_ref / d
        if rule == "inverse-sqrt-d":
            return lr_ref * (d_ref / d) ** 0.5
        return lr_ref
