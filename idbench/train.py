"""One trainer for every run idbench makes: full-space baselines and subspace runs alike.

A run is fully described by a :class:`RunSpec` (what is trained, on what, with which seed, learning
rate and budget); :func:`run` builds the model (and its subspace), trains it with :func:`train` and
returns a :class:`RunResult`. The result's performance is the *final* model's validation score,
never the best epoch's: picking the best epoch on the data that decides the measurement overstates
subspace runs. For the same reason the default schedule decays the learning rate to zero by the end
of the budget (cosine), so the final model does not sit on a noisy oscillation.

A NaN or infinite loss ends a training attempt as ``diverged``; a too-large rate can also collapse
a network to constant outputs without any NaN, which leaves it at chance. Both are properties of
the rate, not of d, so :func:`run` retries such an attempt at half the rate, up to ``MAX_RETRIES``
times, and records the retries and the rate that finished (``RunResult.retries``, ``lr_final``);
only a run that diverges at every rate is ``diverged`` (performance 0, a failed run), and one at
chance at every rate keeps its first model's score. Tuning trials are not retried: there a
failing rate is what the tuner must learn.

Example::

    data = idbench.data.load("digits")
    spec = RunSpec(model="fc[depth=1,width=64]", dataset="digits", seed=0, lr=0.1, epochs=20,
                   projection="fastfood", d=200)
    result = run(spec, data)
    result.val_score, result.test_score, result.diverged
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal

import torch
from pydantic import Field, ValidationError, field_validator, model_validator
from torch import nn

import idbench.methods as methods
import idbench.models as models
import idbench.theta0 as theta0
from idbench.data import Dataset
from idbench.errors import IdbenchError
from idbench.keys import key_fields, stable_key, with_layer_rule
from idbench.methods.base import BatchLoss
from idbench.options import TrainOptions, check_said, options_error
from idbench.paths import TrainingPaths
from idbench.registry import SpecField
from idbench.runinfo import Optimiser, RunInfo
from idbench.seeding import cpu_generator, derive_seed
from idbench.subspace import SubspaceModel

EVAL_BATCH = 2048  # images per summed loss and score of an evaluation
FORWARD_CHUNK = 128  # images per forward pass of an evaluation on the CPU (see evaluate)


class RunSpec(TrainOptions):
    """Everything that determines one training run; its :meth:`key` identifies the run.

    The training options (budget, optimiser, schedule...) are :class:`TrainOptions`, shared with
    :class:`~idbench.config.MeasureConfig`; a bad value raises one :class:`IdbenchError`.
    """

    model: SpecField = Field(description="model spec, e.g. fc[depth=2,width=200]")
    dataset: SpecField = Field(description="dataset spec, e.g. fashion-mnist")
    seed: int = Field(description="initialisation, basis and batch order all derive from it")
    lr: float = Field(description="peak learning rate")
    projection: SpecField | None = Field(None, description="projection spec; None: a "
                                         "full-space (baseline) run")
    d: int | None = Field(None, ge=1, description="directions: per compartment for K equal "
                         "compartments, in total for 'layer' (split across layers)")
    compartments: int | Literal["layer"] | None = Field(
        None, description="None (one), K equal parts, or 'layer'")
    method: SpecField = Field("fpd", validate_default=True,
                              description="method spec: fpd, rbd, nes")
    said: bool = Field(False, description="SAID: a trainable scalar per layer scales that "
                       "layer's offset; d counts them (idbench.subspace)")

    # the fields the run key has always hashed (idbench.keys.key_fields): a field added later
    # changes the key only when set to something other than its default
    KEY_FIELDS: ClassVar[tuple[str, ...]] = (
        "model", "dataset", "seed", "lr", "projection", "d", "compartments", "method", "optimizer",
        "momentum", "weight_decay", "batch_size", "epochs", "steps", "schedule", "warmup",
        "eval_every", "patience", "val_fraction", "split_seed",
    )

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as exc:
            raise IdbenchError(options_error(exc, "run options")) from None

    @field_validator("lr")
    @classmethod
    def _lr(cls, value: float) -> float:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"lr must be a positive number, got {value!r}")
        return value

    @model_validator(mode="after")
    def _subspace(self) -> "RunSpec":
        if (self.projection is None) != (self.d is None):
            raise ValueError("a subspace run needs both a projection and d; a baseline neither")
        if self.said:
            if self.projection is None:
                raise ValueError("said scales a subspace's offset: a baseline run takes no said")
            check_said(self.method.name, self.compartments)
        return self

    @property
    def is_baseline(self) -> bool:
        return self.projection is None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def replace(self, **changes: Any) -> "RunSpec":
        """A copy with ``changes`` applied, checked like a new spec."""
        return RunSpec(**{**self.model_dump(), **changes})

    def key_payload(self) -> dict[str, Any]:
        """What the key hashes: every field, less later fields left at their defaults (and the
        rule of layer compartments, :func:`idbench.keys.with_layer_rule`)."""
        return theta0.with_digest(
            with_layer_rule(key_fields(self, self.KEY_FIELDS), self.compartments))

    def key(self) -> str:
        """A stable hash of the spec: equal specs are the same run."""
        return stable_key(self.key_payload(), 20)


@dataclass
class RunResult:
    """What one training run produced. Scores are the dataset's metric (accuracy) in [0, 1]."""

    val_score: float  # final model's validation performance (0 when diverged)
    val_loss: float
    test_score: float  # reported, never used to decide anything
    train_loss: float  # mean training loss over the last evaluation interval
    steps: int
    wall_s: float
    diverged: bool = False  # diverged at every rate tried
    stopped_early: bool = False
    pruned: bool = False  # a tuning trial stopped by its pruner (:meth:`pruned_at`)
    retries: int = 0  # attempts after the first, each at half the rate (the earlier ones failed)
    lr_final: float | None = None  # the (peak) rate of the attempt this result comes from
    theta0_head: str | None = None  # a checkpoint theta0's head: "kept" or "reinitialised"
    # torch's CPU threads while the run trained: float reductions, and so results, depend on it
    threads: int | None = None
    D: int = 0
    d_total: int | None = None
    info: RunInfo | None = None  # subspace, method and optimiser as built (None: read from a row)
    history: list[dict[str, float]] = field(default_factory=list)  # per evaluation
    # training-path metrics of the whole run (idbench.paths): theta_ and, for a subspace run, z_
    # displacement, path_length, psi and psi_window (the last completed window)
    path_metrics: dict[str, float] = field(default_factory=dict)
    # psi of every completed window of path_window steps, by space ("theta", "z")
    path_windows: dict[str, list[float | None]] = field(default_factory=dict)

    def pruned_at(self, index: int) -> RunResult:
        """The run as a tuning trial pruned after its evaluation ``index``: its outcome and path
        metrics are that evaluation's, whether training stopped there (:class:`StopRun`) or ran
        on (a worker's run, pruned afterwards when its history is reported); no test score."""
        point = self.history[index]
        paths = {k: v for k, v in point.items() if k.startswith(("theta_", "z_"))}
        return dataclasses.replace(
            self, val_score=point["val_score"], val_loss=point["val_loss"],
            train_loss=point["train_loss"], test_score=math.nan, steps=int(point["step"]),
            stopped_early=True, pruned=True, history=self.history[:index + 1],
            path_metrics=paths, path_windows={})


class StopRun(Exception):
    """Raised by an ``on_eval`` callback to end the run after that evaluation (a pruned tuning
    trial): :func:`train` returns the run so far, ``stopped_early``."""


def build_model(spec: RunSpec, data: Dataset) -> nn.Module:
    """The network of ``spec`` at its theta0 (:func:`start_network`), wrapped in its subspace if
    any."""
    return _in_subspace(spec, start_network(spec, data)[0])


def start_network(spec: RunSpec, data: Dataset) -> tuple[nn.Module, str | None]:
    """The network of ``spec`` at its theta0 (:mod:`idbench.theta0`): its seeded initialisation,
    after its burn-in, or a checkpoint loaded into it; and, for a checkpoint, whether its head was
    ``"kept"`` or ``"reinitialised"`` (else None)."""
    net = _initial_network(spec, data)
    if spec.theta0.name == "checkpoint":
        return net, theta0.load_checkpoint(net, theta0.checkpoint_path(spec.theta0))
    if spec.theta0.name == "burn-in":
        net.load_state_dict(_burnt_in(spec, data))
    return net, None


def _initial_network(spec: RunSpec, data: Dataset) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(spec.seed, "init"))
        net = models.create(spec.model, input_shape=data.input_shape, num_classes=data.num_classes)
    return net.to(data.x_train.device)


def _in_subspace(spec: RunSpec, net: nn.Module) -> nn.Module:
    if spec.is_baseline or not methods.method_class(spec.method).uses_subspace_model:
        return net
    return SubspaceModel(
        net, d=spec.d, projection=spec.projection, seed=derive_seed(spec.seed, "basis"),
        compartments=spec.compartments, said=spec.said,
    )


def burn_in_spec(spec: RunSpec, n_train: int) -> RunSpec:
    """The full-space run whose final model is the burn-in theta0 of ``spec``: the run's own
    model, data, seed (so its batches) and optimiser, for the burn-in's steps at its rate, constant
    after the run's warm-up fraction. A burn-in longer than the run's budget is an error."""
    steps = theta0.burn_in_steps(spec.theta0, math.ceil(n_train / spec.batch_size))
    budget = total_steps(spec, n_train)
    if steps > budget:
        raise IdbenchError(f"theta0 {spec.theta0}: a burn-in of {steps} steps is longer than the "
                           f"run's budget of {budget} steps: shorten it or train longer")
    return spec.replace(projection=None, d=None, compartments=None, method="fpd", said=False,
                        theta0="init", lr=spec.theta0.options["lr"], steps=steps,
                        schedule="constant", eval_every=steps, patience=None)


_BURNT_IN: dict[tuple[str, str, str], dict[str, torch.Tensor]] = {}
BURNT_IN_KEPT = 16  # burn-in states kept in memory (every probe of a seed starts from its own)


def _burnt_in(spec: RunSpec, data: Dataset) -> dict[str, torch.Tensor]:
    """The state dict after the burn-in of ``spec`` (trained once per process and data; its time
    is not counted in any run's ``wall_s``)."""
    burn = burn_in_spec(spec, len(data.x_train))
    key = (burn.key(), data.name, str(data.x_train.device))
    if key not in _BURNT_IN:
        net = _initial_network(burn, data)
        with torch.random.fork_rng(devices=[]):
            result = train(net, data, burn)
        if result.diverged:  # every run would start from NaN; the runs' retries cannot help
            raise IdbenchError(f"theta0 {spec.theta0}: the burn-in diverged at lr="
                               f"{burn.lr:g}: lower its lr")
        if len(_BURNT_IN) >= BURNT_IN_KEPT:
            _BURNT_IN.pop(next(iter(_BURNT_IN)))
        _BURNT_IN[key] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return _BURNT_IN[key]


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, split: str) -> tuple[float, float]:
    """(mean score, mean loss) of ``model`` on a split, in eval mode.

    The loss and score are summed over batches of ``EVAL_BATCH`` images. On the CPU each batch's
    forward pass runs in chunks of ``FORWARD_CHUNK`` images, whose activations stay in cache (a
    convolution's over 2,048 images do not, which made evaluating LeNet three times slower); an
    eval-mode forward pass treats every image on its own, so the logits, and the sums, are the
    same bits either way. A GPU takes each batch in one pass.
    """
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    chunk = FORWARD_CHUNK if x.device.type == "cpu" else EVAL_BATCH
    was_training = model.training
    model.eval()
    score_sum, loss_sum = 0.0, 0.0
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
        out = torch.cat([model(xb[i : i + chunk]) for i in range(0, len(xb), chunk)])
        score_sum += float(data.score(out, yb).sum())
        loss_sum += float(data.loss(out, yb)) * len(xb)
    model.train(was_training)
    return score_sum / len(x), loss_sum / len(x)


def lr_at(spec: RunSpec, step: int, budget: int) -> float:
    """Learning rate of step ``step`` (0-based): a linear warm-up over the first ``warmup`` of the
    budget (a large rate at initialisation can kill a network on some seeds and not others), then
    cosine decay to zero at ``budget``, or constant."""
    warm = round(spec.warmup * budget)
    if step < warm:
        return spec.lr * (step + 1) / warm
    if spec.schedule == "cosine":
        return spec.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (budget - warm)))
    return spec.lr


def total_steps(spec: RunSpec, n_train: int) -> int:
    """The run's budget in optimiser steps."""
    if spec.steps is not None:
        return spec.steps
    return max(1, math.ceil(spec.epochs * math.ceil(n_train / spec.batch_size)))


EvalCallback = Callable[[int, float, float], None]


class Batches:
    """The training batches of a run: a fresh seeded permutation of the training split every
    epoch, each batch augmented by the dataset with the run's own generator."""

    def __init__(self, data: Dataset, spec: RunSpec) -> None:
        self.data, self.batch_size = data, spec.batch_size
        self.n_train = len(data.x_train)
        self.steps_per_epoch = math.ceil(self.n_train / spec.batch_size)
        device = data.x_train.device
        self._order_gen = cpu_generator(spec.seed, "batches")
        self._aug_gen = torch.Generator(device=device).manual_seed(derive_seed(spec.seed, "augment"))
        self._order = torch.empty(0, dtype=torch.long)

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of step ``step``; steps must come in order."""
        position = step % self.steps_per_epoch
        if position == 0:
            self._order = torch.randperm(self.n_train, generator=self._order_gen).to(
                self.data.x_train.device)
        idx = self._order[position * self.batch_size : (position + 1) * self.batch_size]
        return self.data.augment_batch(self.data.x_train[idx], self._aug_gen), self.data.y_train[idx]


@dataclass
class TrainState:
    """Where a run stands: steps taken, evaluations so far, the training loss summed since the
    last evaluation (a tensor, so steps need no device sync), and whether it has ended early."""

    budget: int
    eval_every: int
    loss_sum: torch.Tensor
    paths: TrainingPaths  # the path through parameter (and subspace) space, step by step
    step: int = 0
    loss_count: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_loss: float = math.inf
    since_best: int = 0
    diverged: bool = False
    stopped_early: bool = False

    @property
    def running(self) -> bool:
        return self.step < self.budget and not (self.diverged or self.stopped_early)

    def add_step(self, loss: torch.Tensor) -> None:
        """Count one step with its batch loss; a non-finite loss (checked every 10 steps, a sync
        each) ends the run as diverged."""
        self.loss_sum += loss
        self.loss_count += 1
        self.step += 1
        if self.step % 10 == 0 and not math.isfinite(float(loss)):
            self.diverged = True

    def take_train_loss(self) -> float:
        """The mean training loss since the last evaluation (and restart the sum)."""
        train_loss = float(self.loss_sum) / self.loss_count
        self.loss_sum, self.loss_count = torch.zeros_like(self.loss_sum), 0
        return train_loss


StepHook = Callable[[TrainState, torch.Tensor], None]  # after every step: the state, batch loss


def train(
    model: nn.Module, data: Dataset, spec: RunSpec, *, on_eval: EvalCallback | None = None,
    on_step: StepHook | None = None,
) -> RunResult:
    """Train ``model`` (all parameters that require grad) as ``spec`` says.

    ``on_eval(index, val_score, val_loss)`` is called after every evaluation (Optuna pruning hooks
    in here and raises :class:`StopRun` to end the run there); ``on_step(state, loss)`` after
    every step (per-step measurements hook in here; ``loss`` is a tensor, reading it syncs the
    device).
    """
    start = time.perf_counter()
    method = methods.create(spec.method, model=model, run_spec=spec)
    batches = Batches(data, spec)
    budget = total_steps(spec, batches.n_train)
    state = TrainState(budget=budget,
                       eval_every=spec.eval_every or min(batches.steps_per_epoch, budget),
                       loss_sum=torch.zeros((), device=data.x_train.device),
                       # fpd's torch optimiser: full-space step lengths come from its updates
                       paths=TrainingPaths(model, window=spec.path_window,
                                           optimizer=getattr(method, "optimizer", None)))
    torch.manual_seed(derive_seed(spec.seed, "train"))  # dropout and other in-model randomness
    model.train()
    while state.running:
        xb, yb = batches.at(state.step)
        loss = method.step(BatchLoss(xb, yb, data.loss), lr_at(spec, state.step, budget))
        state.paths.after_step()
        state.add_step(loss)
        if on_step is not None:
            on_step(state, loss)
        converged = method.converged()  # further steps would change nothing: the last evaluation
        if not state.diverged and (state.step % state.eval_every == 0 or state.step == budget
                                   or converged):
            _evaluate_into(state, model, data, spec, on_eval)
        state.stopped_early |= converged and state.step < budget
    return _result(model, method, data, state, start)


def _evaluate_into(state: TrainState, model: nn.Module, data: Dataset, spec: RunSpec,
                   on_eval: EvalCallback | None) -> None:
    """One evaluation: the training loss since the last one and the validation score and loss go
    into ``state.history``; a non-finite loss ends the run as diverged, ``patience`` evaluations
    without a better validation loss end it early."""
    train_loss = state.take_train_loss()
    if not math.isfinite(train_loss):
        state.diverged = True
        return
    val_score, val_loss = evaluate(model, data, "val")
    if not math.isfinite(val_loss):
        state.diverged = True
        return
    state.history.append({"step": state.step, "val_score": val_score, "val_loss": val_loss,
                          "train_loss": train_loss, **state.paths.summary()})
    if on_eval is not None:
        try:
            on_eval(len(state.history) - 1, val_score, val_loss)
        except StopRun:
            state.stopped_early = True
            return
    if val_loss < state.best_loss:
        state.best_loss, state.since_best = val_loss, 0
    else:
        state.since_best += 1
    if spec.patience is not None and state.since_best >= spec.patience and state.step < state.budget:
        state.stopped_early = True


def run_info(model: nn.Module, method: methods.Method) -> RunInfo:
    """What the run reports about itself: the subspace the model (or the method) built, the
    optimiser really used, the method's options and diagnostics."""
    subspace = model.info() if isinstance(model, SubspaceModel) else method.subspace_info()
    spec = method.spec
    D = subspace.D if subspace is not None else sum(p.numel() for p in model.parameters())
    optimiser = method.optimiser() or Optimiser(spec.optimizer, spec.momentum, spec.weight_decay)
    return RunInfo(D=D, subspace=subspace, optimiser=optimiser,
                   method_options=method.describe(), grad_cosine=method.grad_cosine())


def _result(model: nn.Module, method: methods.Method, data: Dataset, state: TrainState,
            start: float) -> RunResult:
    """The run's result: the final model's scores (zero when diverged) and its description;
    ``start`` is the run's ``time.perf_counter()`` at its start."""
    info = run_info(model, method)
    common = dict(steps=state.step, D=info.D, info=info, history=state.history,
                  threads=torch.get_num_threads(),
                  path_metrics=state.paths.summary(), path_windows=state.paths.windows(),
                  d_total=info.subspace.d_total if info.subspace is not None else None)
    if state.diverged:
        return RunResult(val_score=0.0, val_loss=math.inf, test_score=0.0, train_loss=math.inf,
                         wall_s=time.perf_counter() - start, diverged=True, **common)
    test_score, _ = evaluate(model, data, "test")
    last = state.history[-1]
    return RunResult(val_score=last["val_score"], val_loss=last["val_loss"],
                     test_score=test_score, train_loss=last["train_loss"],
                     wall_s=time.perf_counter() - start,
                     stopped_early=state.stopped_early, **common)


# Retries of a failed run, each at half the previous rate: enough to undo the largest carry of the
# default search (a rate tuned at d_max = 8192 carried inverse-d to d_min = 32 is x256 = 2**8), so a
# probe far from where its rate was tuned measures d at a stable rate, not the carried rate's
# divergence (3 halvings left FC rbd's probes at d = 32-256 diverged at every rate, scored 0).
MAX_RETRIES = 8


def run(
    spec: RunSpec, data: Dataset, *, on_eval: EvalCallback | None = None,
    max_retries: int = MAX_RETRIES,
) -> RunResult:
    """Build the model of ``spec`` and train it on ``data`` (already loaded on its device).

    A failed attempt (:func:`failed`: diverged, or collapsed to chance) is retried from the same
    initialisation at half the rate, up to ``max_retries`` times (0 for tuning trials, whose
    ``on_eval`` reports must come from one attempt at the trial's own rate). The spec, and so the
    run's key, keeps the nominal rate. When every attempt fails, the result is the first that ended
    with a model (at chance, ``retries`` = ``max_retries``), else the last (diverged, scored 0).
    """
    attempt, wall_s, first_model = spec, 0.0, None
    for retries in range(max_retries + 1):
        net, head = start_network(attempt, data)
        result = train(_in_subspace(attempt, net), data, attempt, on_eval=on_eval)
        result.theta0_head = head
        wall_s += result.wall_s
        result.retries, result.lr_final, result.wall_s = retries, attempt.lr, wall_s
        if not failed(result, data):
            return result
        if not result.diverged and first_model is None:
            first_model = result
        attempt = attempt.replace(lr=attempt.lr / 2)
    if first_model is None:
        return result  # diverged at every rate
    first_model.retries, first_model.wall_s = max_retries, wall_s  # at chance at every rate
    return first_model


def failed(result: RunResult, data: Dataset) -> bool:
    """Whether a finished attempt calls for a retry at a lower rate: its loss turned NaN/inf
    (``diverged``), or its final model is no better than chance (:meth:`Dataset.at_chance`: a
    network collapsed to constant outputs, which shows no NaN)."""
    return result.diverged or data.at_chance(result.val_score, result.val_loss)
