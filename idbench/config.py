"""What one measurement (one cell of a suite) is asked to do: :class:`MeasureConfig`.

A suite expands into a list of these; ``idbench measure`` builds one from its flags;
:func:`idbench.measure` takes one. Defaults are the protocol of the design notes. The training
options are :class:`~idbench.options.TrainOptions`, shared with every run's
:class:`~idbench.train.RunSpec`; each field has a one-line help text (its ``description``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from idbench.errors import IdbenchError
from idbench.keys import key_fields, stable_key, with_layer_rule
from idbench.options import TrainOptions, options_error
from idbench.registry import SpecField


class MeasureConfig(TrainOptions):
    """One cell: model x dataset x projection x method, with its protocol options."""

    model: SpecField = Field(description="model spec, e.g. fc[depth=2,width=200]")
    dataset: SpecField = Field(description="dataset spec, e.g. fashion-mnist")
    projection: SpecField = Field("dense", validate_default=True,
                                  description="projection spec, e.g. sparse[density=0.01]")
    method: SpecField = Field("fpd", validate_default=True,
                              description="method spec, e.g. rbd[distribution=uniform]")
    compartments: int | Literal["layer"] | None = Field(
        None, description="split theta into K equal compartments, or 'layer'; each has d directions")
    seeds: int = Field(3, ge=1, description="seeds per baseline and per probe")
    # threshold
    threshold: float = Field(0.9, description="fraction of the baseline to reach (0.9: d_int90)")
    baseline: str = Field("local", description="'local' (trained full-space baseline) or "
                          "'global:<score>'")
    # d search
    d_min: int = Field(10, ge=1, description="smallest d of the search")
    d_max: int = Field(100_000, ge=1, description="largest d of the search (beyond: censored)")
    resolution: float = Field(0.05, gt=0, lt=1, description="relative resolution of the bisection")
    grid: tuple[int, ...] | None = Field(None, description="fixed list of d to probe instead of "
                                         "the search")
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
    # it: LeNet at 0.25 epoch scored 0.721 under draw 0 and 0.699 under draw 1) or "subspace"
    # (the baseline tuned as draw 0's, so a protocol's floor is read at one threshold)
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
    # tuned (x2 before this field existed; x1.5 since the protocol check's LeNet/sparse cell, where
    # a rate carried x1.97 gave 227 against every-probe's 164 and one re-tuning gave 159)
    lr_retune_factor: float = Field(
        1.5, gt=1, description="lr_protocol bracket: re-tune the subspace lr where the crossing "
        "lies further than this factor from where it was tuned")
    # bracket: where the search starts again after a re-tuning. "lattice": at the d_min x 2^k
    # below half the bracket's lower end, so that it probes the d the first search and
    # tune-every-probe probe (idbench.lr.protocols.on_lattice); "half": at half the lower end
    # itself (the protocol before this field; on the known-answer family 32 of 40 brackets
    # overlapped tune-every-probe's under it, 38 of 40 on the lattice)
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

    # the fields the cell key has always hashed, in their order (idbench.keys.key_fields)
    KEY_FIELDS: ClassVar[tuple[str, ...]] = (
        "model", "dataset", "projection", "method", "compartments", "seeds", "epochs", "steps",
        "batch_size", "optimizer", "momentum", "schedule", "warmup", "patience", "val_fraction",
        "threshold", "baseline", "d_min", "d_max", "resolution", "grid", "tune_trials",
        "tune_seeds", "tune_every_probe", "d_ref", "lr", "lr_subspace", "lr_range", "lr_scaling",
        "lr_window",
    )

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

    def key(self) -> str:
        """The cell key: a stable hash of everything that determines the measurement."""
        payload = with_layer_rule(key_fields(self, self.KEY_FIELDS), self.compartments)
        # the re-tuning factor is hashed where it decides (at its default too: a cell measured
        # under the old x2 rule is not reused) and nowhere else
        payload.pop("lr_retune_factor", None)
        payload.pop("retune_restart", None)
        if self.retunes_at_bracket:
            payload["lr_retune_factor"] = self.lr_retune_factor
            if self.retune_restart != "half":  # cells measured before the field keep their keys
                payload["retune_restart"] = self.retune_restart
        return stable_key(payload, 16, style="pydantic")

    @field_validator("compartments", mode="before")
    @classmethod
    def _compartments(cls, value: Any) -> Any:
        """A positive integer K (also written as text, from the command line), 'layer' or None:
        one message for any other value (not one per member of the union)."""
        if value is None or value == "layer":
            return value
        number = value if isinstance(value, int) and not isinstance(value, bool) else (
            int(value) if isinstance(value, str) and value.strip().isdigit() else None)
        if number is None or number < 1:
            raise ValueError(f"give a positive integer K (K equal compartments) or 'layer' (one "
                             f"per layer), got {value!r}")
        return number

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError("threshold must be in (0, 1], e.g. 0.9 for d_int90")
        return value

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, value: str) -> str:
        if value == "local":
            return value
        kind, _, score = value.partition(":")
        try:
            ok = kind == "global" and 0 < float(score) <= 1
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("baseline must be 'local' or 'global:<score in (0, 1]>', e.g. global:0.9")
        return value

    @model_validator(mode="after")
    def _ranges(self) -> "MeasureConfig":
        if self.d_min > self.d_max:
            raise ValueError(f"d_min ({self.d_min}) is larger than d_max ({self.d_max})")
        if self.grid is not None and (not self.grid or min(self.grid) < 1):
            raise ValueError("grid must be a non-empty list of positive integers")
        lo, hi = self.lr_range
        if not 0 < lo < hi:
            raise ValueError("lr_range must be (low, high) with 0 < low < high")
        if self.damping_range is not None:
            lo, hi = self.damping_range
            if not 0 < lo < hi:
                raise ValueError("damping_range must be (low, high) with 0 < low < high")
            if self.optimizer != "ngd" or self.tune_trials == 0:
                raise ValueError(
                    "damping_range tunes ngd's damping with the learning rate: it needs optimizer "
                    f"ngd and tune_trials > 0 (got optimizer {self.optimizer}, tune_trials "
                    f"{self.tune_trials}); drop it, or set ngd_damping to fix the damping")
        if self.tune_redraw != "all" and not self.tune_draw:
            raise ValueError("tune_redraw: subspace redraws the subspace tuning of another draw: "
                             "set tune_draw to 1 or more, or drop tune_redraw")
        if self.tune_pick == "fit" and self.damping_range is not None:
            raise ValueError("tune_pick: fit fits the rate alone, and damping_range tunes the "
                             "damping with it: use tune_pick best, or drop damping_range")
        if self.optimizer in ("lbfgs", "ngd"):
            from idbench.methods import method_class  # here: methods import torch

            if not method_class(self.method).uses_optimizer:
                raise ValueError(
                    f"optimizer {self.optimizer} trains z with an optimiser, but method "
                    f"'{self.method}' takes its own steps (plain SGD on a fresh basis): use method "
                    f"fpd with {self.optimizer}, or optimizer sgd with this method"
                )
        return self

    @classmethod
    def build(cls, labels: dict[str, str] | None = None, /, **options: Any) -> "MeasureConfig":
        """Validate ``options`` into a config, turning pydantic's errors into one IdbenchError
        that names each option by its label (the command line's ``--d-min``), else its field."""
        try:
            return cls(**options)
        except ValidationError as exc:
            raise IdbenchError(options_error(exc, "measurement options", labels)) from None

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

    @property
    def global_baseline(self) -> float | None:
        """The absolute baseline score of ``global:<score>``, None for ``local``."""
        return float(self.baseline.split(":", 1)[1]) if self.baseline != "local" else None
