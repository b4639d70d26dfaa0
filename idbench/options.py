"""The training options, defined once: :class:`TrainOptions` (type, default, bounds, help of each).

A training run (:class:`idbench.train.RunSpec`) and a measurement (:class:`idbench.config.MeasureConfig`)
both hold these options: they inherit them from here, so a default, a bound or an error message
exists in one place, and the command line derives its flags from :data:`TrainOptions.model_fields`
(each field's ``description`` is its one-line help). Errors of either model become one
:class:`~idbench.errors.IdbenchError` through :func:`options_error`.

Example::

    TrainOptions(epochs=10, optimizer="adam")
    {name: f.description for name, f in TrainOptions.model_fields.items()}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from idbench.theta0 import Theta0Field, recorded_text

OPTIMIZERS = ("sgd", "adam", "lbfgs", "ngd")  # lbfgs, ngd: fpd only (idbench.methods.fpd)
SCHEDULES = ("cosine", "constant")


class TrainOptions(BaseModel):
    """How every run of a measurement trains: budget, batches, optimiser, schedule, validation."""

    # NaN and infinity are never an option's value (a budget of NaN epochs would fail only once
    # training starts; a rate of NaN compares false with every bound)
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(),
                              allow_inf_nan=False)

    epochs: float | None = Field(5.0, description="training budget in epochs (steps overrides it)")
    steps: int | None = Field(None, ge=1, description="training budget in optimiser steps; "
                              "overrides epochs when given")
    batch_size: int = Field(128, ge=1, description="examples per optimiser step")
    optimizer: Literal[OPTIMIZERS] = Field(  # type: ignore[valid-type]
        "sgd", description="optimiser of baseline and fpd runs: sgd, adam, or (fpd only) lbfgs "
        "or ngd (natural gradient: SGD on the damped empirical-Fisher direction)")
    momentum: float = Field(0.9, ge=0, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0, description="weight decay of sgd and adam")
    schedule: Literal[SCHEDULES] = Field(  # type: ignore[valid-type]
        "cosine", description="learning-rate schedule: cosine (decays to zero) or constant")
    warmup: float = Field(0.05, ge=0, lt=1, description="fraction of the budget with a linear "
                          "learning-rate warm-up")
    eval_every: int | None = Field(None, ge=1, description="steps between validation "
                                   "evaluations (default: once per epoch)")
    patience: int | None = Field(None, ge=1, description="stop early after this many "
                                 "evaluations without a better validation loss")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="fraction of the training split "
                                "held out for validation")
    split_seed: int = Field(0, ge=0, description="seed of the train/validation split")
    ngd_samples: int = Field(16, ge=1, description="ngd: examples of each batch whose gradients "
                             "sketch the empirical Fisher")
    ngd_damping: float = Field(0.1, gt=0, description="ngd: damping lambda added to the Fisher")
    ngd_refresh: int = Field(10, ge=1, description="ngd: steps between recomputations of the "
                             "Fisher sketch")
    path_window: int = Field(250, ge=1, description="steps per window of the windowed "
                             "directedness psi of the training path (idbench.paths)")
    theta0: Theta0Field = Field(
        "init", validate_default=True, description="where every run (baseline too) starts: "
        "init, burn-in[steps=T,lr=L] (or epochs=F: T steps of full-space training, seeded like "
        "the run), checkpoint[path=FILE] or checkpoint[run=KEY,store=DIR] (idbench.theta0)")

    @model_validator(mode="after")
    def _budget(self) -> "TrainOptions":
        if self.steps is None and (self.epochs is None or self.epochs <= 0):
            raise ValueError("give a positive budget: epochs > 0 or steps >= 1")
        return self

    def recorded(self) -> dict[str, Any]:
        """The fields as result rows record them: ngd's options only where ngd trains (to any
        other optimiser they mean nothing, so their columns are null); theta0 without the folder
        its checkpoint was found in (:func:`idbench.theta0.recorded_text`)."""
        values = {**self.model_dump(), "theta0": recorded_text(self.theta0)}
        if self.optimizer != "ngd":
            values.update(dict.fromkeys(NGD_OPTIONS))
        return values


NGD_OPTIONS = ("ngd_samples", "ngd_damping", "ngd_refresh")


def check_said(method: str, compartments: object) -> None:
    """SAID's scalars are trained by fpd's optimiser, next to z (rbd and nes draw their own
    directions and step only along them), and scale one layer each, which one compartment or
    per-layer compartments allow: a ``ValueError`` saying so otherwise."""
    if method != "fpd":
        raise ValueError(f"said trains one scalar per layer with fpd's optimiser; method "
                         f"{method} takes its own steps: use method fpd, or drop said")
    if compartments not in (None, 1, "layer"):
        raise ValueError(f"said counts its per-layer scalars in d, which needs one compartment "
                         f"or 'layer', not {compartments}: drop compartments or said")


def options_error(exc: ValidationError, what: str, labels: dict[str, str] | None = None) -> str:
    """One line naming every problem of a :class:`ValidationError`, e.g. ``bad run options:
    unknown optimizer 'newton'; choose from sgd, adam, lbfgs``.

    ``labels`` names options as the user wrote them (the command line: ``{"d_min": "--d-min"}``);
    a field name with an underscore is relabelled inside messages too (``lr_range must be ...``).
    """
    labels = labels or {}
    problems = []
    seen: set[str] = set()
    for error in exc.errors():
        loc = error["loc"]
        field = labels.get(str(loc[0]), str(loc[0])) if loc else ""
        if field and field in seen:
            continue  # one problem per option (a union field fails once per member type)
        seen.add(field)
        if error["type"] == "finite_number":
            problems.append(f"{field}: {not_finite(error['input'])}")
            continue
        if error["type"] == "literal_error":
            choices = error.get("ctx", {}).get("expected", "").replace("'", "").replace(" or", ",")
            problems.append(f"unknown {field} {error['input']!r}; choose from {choices}")
            continue
        message = error["msg"].removeprefix("Value error, ")
        position = next((part for part in loc[1:] if isinstance(part, int)), None)  # in a tuple
        if error["type"] == "too_long" or (error["type"] == "missing" and position is not None):
            message = f"takes two values, LOW,HIGH; got {len(error['input'])}"  # the range fields
        elif position is not None:
            message = f"value {position + 1} ({error['input']!r}): {message}"
        for name, label in labels.items():
            if "_" in name:
                message = re.sub(rf"\b{name}\b", label, message)
        problems.append(f"{field}: {message}" if field else message)
    return f"bad {what}: " + "; ".join(problems)


def not_finite(value: Any) -> str:
    """What is wrong with a NaN or infinite option value (a float, or text such as ``nan``),
    naming it: ``NaN is not a finite number; give a finite value``."""
    number = float(value)
    name = "NaN" if number != number else ("infinity" if number > 0 else "-infinity")
    return f"{name} is not a finite number; give a finite value"
