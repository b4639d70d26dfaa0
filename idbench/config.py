"""What one measurement (one cell of a suite) is asked to do: :class:`MeasureConfig`.

A suite expands into a list of these; ``idbench measure`` builds one from its flags;
:func:`idbench.measure` takes one. Defaults are the protocol of the design notes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from idbench.errors import IdbenchError


class MeasureConfig(BaseModel):
    """One cell: model x dataset x projection x method, with its protocol options."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str  # model spec, e.g. "fc[depth=2,width=200]"
    dataset: str  # dataset spec
    projection: str = "dense"  # projection spec, e.g. "sparse[density=0.01]"
    method: str = "fpd"  # method spec, e.g. "rbd[distribution=uniform]"
    compartments: int | Literal["layer"] | None = None
    # training budget and optimiser (shared by baseline and subspace runs)
    seeds: int = Field(3, ge=1)
    epochs: float | None = 5.0
    steps: int | None = None
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["sgd", "adam", "lbfgs"] = "sgd"  # lbfgs: fpd only (idbench.methods.fpd)
    momentum: float = 0.9
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup: float = Field(0.05, ge=0, lt=1)  # linear warm-up, fraction of the budget
    patience: int | None = None
    val_fraction: float = 0.1
    # threshold
    threshold: float = 0.9  # fraction of the baseline
    baseline: str = "local"  # "local" or "global:<score>"
    # d search
    d_min: int = Field(10, ge=1)
    d_max: int = Field(100_000, ge=1)
    resolution: float = Field(0.05, gt=0, lt=1)  # relative bisection resolution
    grid: tuple[int, ...] | None = None  # fixed-grid mode instead of the search
    # learning-rate tuning (Optuna)
    tune_trials: int = Field(8, ge=0)  # 0: use lr / lr_subspace as given
    tune_seeds: int = Field(2, ge=1)  # seeds per trial; the objective is their mean val loss
    tune_every_probe: bool = False  # tune at every probe instead of once at d_ref
    d_ref: int | None = None  # where the subspace lr is tuned (default: geometric mid of range)
    lr: float = 0.1  # baseline lr when not tuned
    lr_subspace: float | None = None  # subspace lr when not tuned (default: lr)
    lr_range: tuple[float, float] = (1e-3, 10.0)  # the baseline's (and a global baseline's subspace) range
    # how the subspace lr tuned at d_ref carries to other d. With unit-norm columns E[P P^T] =
    # (d/D) I, so an SGD step moves theta by lr * d / D times the gradient: "inverse-d" keeps that
    # constant; Adam's per-coordinate steps move theta by ~lr * sqrt(d): "inverse-sqrt-d".
    # "auto" picks by optimizer (and inverse-d for rbd/nes, which take plain SGD steps).
    lr_scaling: Literal["auto", "none", "inverse-d", "inverse-sqrt-d"] = "auto"
    # subspace lr tuned within [prior / w, prior * w], prior = the tuned baseline lr carried from
    # d = D to d_ref by lr_scaling; None: the whole lr_range (also with a global baseline)
    lr_window: float | None = Field(10.0, gt=1)

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
        if self.steps is None and (self.epochs is None or self.epochs <= 0):
            raise ValueError("give a positive budget: epochs > 0 or steps >= 1")
        lo, hi = self.lr_range
        if not 0 < lo < hi:
            raise ValueError("lr_range must be (low, high) with 0 < low < high")
        if self.optimizer == "lbfgs":
            from idbench.methods import method_class  # here: methods import torch

            if not method_class(self.method).uses_optimizer:
                raise ValueError(
                    f"optimizer lbfgs trains z with an optimiser, but method {self.method!r} takes "
                    "its own steps (plain SGD on a fresh basis): use method fpd with lbfgs, or "
                    "optimizer sgd with this method"
                )
        return self

    @classmethod
    def build(cls, **options: object) -> "MeasureConfig":
        """Validate ``options`` into a config, turning pydantic's errors into one IdbenchError."""
        from pydantic import ValidationError

        try:
            return cls(**options)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
            )
            raise IdbenchError(f"bad measurement options: {problems}") from None

    @property
    def resolved_lr_scaling(self) -> str:
        """The lr scaling rule in force (``auto`` resolved)."""
        if self.lr_scaling != "auto":
            return self.lr_scaling
        plain_sgd = self.optimizer == "sgd" or not self.method.startswith("fpd")
        return "inverse-d" if plain_sgd else "inverse-sqrt-d"

    def subspace_lr(self, lr_ref: float, d_ref: int, d: int) -> float:
        """The learning rate at ``d`` given the one tuned at ``d_ref``."""
        rule = self.resolved_lr_scaling
        if rule == "inverse-d":
            return lr_ref * d_ref / d
        if rule == "inverse-sqrt-d":
            return lr_ref * (d_ref / d) ** 0.5
        return lr_ref

    @property
    def global_baseline(self) -> float | None:
        """The absolute baseline score of ``global:<score>``, None for ``local``."""
        return float(self.baseline.split(":", 1)[1]) if self.baseline != "local" else None
