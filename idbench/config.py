"""What one measurement (one cell of a suite) is asked to do: :class:`MeasureConfig`.

A suite expands into a list of these; ``idbench measure`` builds one from its flags;
:func:`idbench.measure` takes one. Defaults are the protocol of the design notes. The training
options are :class:`~idbench.options.TrainOptions`, shared with every run's
:class:`~idbench.train.RunSpec`, and the learning-rate options
:class:`~idbench.lr.options.RateOptions`; each field has a one-line help text (its
``description``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from idbench.errors import IdbenchError
from idbench.keys import key_fields, stable_key, with_layer_rule
from idbench.lr.options import LR_WINDOW, WINDOW_MOVES, RateOptions
from idbench.options import TrainOptions, check_said, options_error
from idbench.registry import SpecField
from idbench.theta0 import with_digest

REPLICATE_STRIDE = 1_000_000  # replicate r trains seeds r x this + s, apart from every other r


class MeasureConfig(TrainOptions, RateOptions):
    """One cell: model x dataset x projection x method, with its protocol options (the
    learning-rate options: :class:`~idbench.lr.options.RateOptions`)."""

    model: SpecField = Field(description="model spec, e.g. fc[depth=2,width=200]")
    dataset: SpecField = Field(description="dataset spec, e.g. fashion-mnist")
    projection: SpecField = Field("dense", validate_default=True,
                                  description="projection spec, e.g. sparse[density=0.01]")
    method: SpecField = Field("fpd", validate_default=True,
                              description="method spec, e.g. rbd[distribution=uniform]")
    compartments: int | Literal["layer"] | None = Field(
        None, description="split theta into K equal compartments, or 'layer'; each has d directions")
    said: bool = Field(False, description="SAID: one trainable scalar per layer multiplies that "
                       "layer's offset, counted in d (fpd only; one compartment or 'layer')")
    seeds: int = Field(1, ge=1, description="seeds per baseline and per probe (of each draw)")
    # an independent re-measurement of the cell (benchmarks/calibration.py)
    replicate: int = Field(0, ge=0, description="an independent re-measurement: other training, "
                           "baseline and tuning seeds and another tuner draw (0: the default)")
    # the default protocol: 4 draws of 1 seed, the setting benchmarks/calibration.py calibrates
    draws: int = Field(4, ge=1, description="independent draws pooled into the estimate "
                       "(idbench.draws): each its own seeds, baseline, tunings and search; the "
                       "interval is one over draws, which covers the tuner's draw (1: one "
                       "measurement, its interval over seeds alone)")
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
    # the fields the cell key has always hashed, in their order (idbench.keys.key_fields)
    KEY_FIELDS: ClassVar[tuple[str, ...]] = (
        "model", "dataset", "projection", "method", "compartments", "seeds", "epochs", "steps",
        "batch_size", "optimizer", "momentum", "schedule", "warmup", "patience", "val_fraction",
        "threshold", "baseline", "d_min", "d_max", "resolution", "grid", "tune_trials",
        "tune_seeds", "tune_every_probe", "d_ref", "lr", "lr_subspace", "lr_range", "lr_scaling",
        "lr_window",
    )

    def key(self) -> str:
        """The cell key: a stable hash of everything that determines the measurement."""
        payload = with_digest(with_layer_rule(
            key_fields(self, self.KEY_FIELDS, {"lr_window": LR_WINDOW}), self.compartments))
        # the re-tuning factor is hashed where it decides (at its default too: a cell measured
        # under the old x2 rule is not reused) and nowhere else, with the lattice restart (cells
        # measured under the former half restart do not share its keys)
        payload.pop("lr_retune_factor", None)
        # draws are hashed where there are several, whatever the default: one draw is the cell
        # as it was before draws existed, and several are never the cell of a single draw
        payload.pop("draws", None)
        if self.draws != 1:
            payload["draws"] = self.draws
        if self.retunes_at_bracket:
            payload["lr_retune_factor"] = self.lr_retune_factor
            payload["retune_restart"] = "lattice"
        # a tuning at every probe moves its window past the end its best trial sits at: cells
        # measured when it did not are not reused
        if self.tune_every_probe:
            payload["window_moves"] = WINDOW_MOVES
        return stable_key(payload, 16, style="pydantic")

    def seed(self, s: int) -> int:
        """The training seed of the cell's seed ``s`` (baseline and probes alike): replicate r
        trains seeds r x :data:`REPLICATE_STRIDE` + s."""
        return self.replicate * REPLICATE_STRIDE + s

    @property
    def draw(self) -> int:
        """The tuner's draw of every tuning of the cell (its grid offset and TPE's proposals):
        ``tune_draw``, moved by the replicate, so replicate 0 keeps it."""
        return self.tune_draw + 1000 * self.replicate

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
        if self.grid is None and self.d_min == self.d_max:
            raise ValueError(
                f"d_min = d_max = {self.d_min} leaves the search one d, where it has no d_int to "
                f"find (only <= {self.d_min} or > {self.d_max}): widen d_min .. d_max to search "
                f"d_int, or set grid: [{self.d_min}] to measure the score at d = {self.d_min}")
        if self.grid is not None and (not self.grid or min(self.grid) < 1):
            raise ValueError("grid must be a non-empty list of positive integers")
        if self.said:
            check_said(self.method.name, self.compartments)
        if self.damping_range is not None:
            if self.optimizer != "ngd" or self.tune_trials == 0:
                raise ValueError(
                    "damping_range tunes ngd's damping with the learning rate: it needs optimizer "
                    f"ngd and tune_trials > 0 (got optimizer {self.optimizer}, tune_trials "
                    f"{self.tune_trials}); drop it, or set ngd_damping to fix the damping")
        if self.tune_trials == 0 and self.replicate:
            raise ValueError(
                f"replicate {self.replicate} redraws the tuner, but tune_trials 0 fixes every "
                "rate (lr, lr_subspace): there is nothing to redraw; tune the rates "
                "(tune_trials > 0), or measure other seeds by raising seeds")
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
    def global_baseline(self) -> float | None:
        """The absolute baseline score of ``global:<score>``, None for ``local``."""
        return float(self.baseline.split(":", 1)[1]) if self.baseline != "local" else None
