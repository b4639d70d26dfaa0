"""One trainer for every run idbench makes: full-space baselines and subspace runs alike.

A run is fully described by a :class:`RunSpec` (what is trained, on what, with which seed, learning
rate and budget); :func:`run` builds the model (and its subspace), trains it with :func:`train` and
returns a :class:`RunResult`. The result's performance is the *final* model's validation score,
never the best epoch's: picking the best epoch on the data that decides the measurement overstates
subspace runs. For the same reason the default schedule decays the learning rate to zero by the end
of the budget (cosine), so the final model does not sit on a noisy oscillation.

A NaN or infinite loss ends a training attempt as ``diverged``. Divergence is a property of the
rate, not of d, so :func:`run` retries a diverged run at half the rate, up to ``MAX_RETRIES`` times,
and records the retries and the rate that finished (``RunResult.retries``, ``lr_final``); only a
run that diverges at every rate is ``diverged`` (performance 0, a failed run). Tuning trials are not
retried: there a diverging rate is what the tuner must learn.

Example::

    data = idbench.data.load("digits")
    spec = RunSpec(model="fc[depth=1,width=64]", dataset="digits", seed=0, lr=0.1, epochs=20,
                   projection="fastfood", d=200)
    result = run(spec, data)
    result.val_score, result.test_score, result.diverged
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

import idbench.methods as methods
import idbench.models as models
from idbench.data import Dataset
from idbench.errors import IdbenchError
from idbench.methods.fpd import OPTIMIZERS
from idbench.seeding import cpu_generator, derive_seed
from idbench.subspace import Compartments, SubspaceModel

SCHEDULES = ("cosine", "constant")
EVAL_BATCH = 2048


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one training run; its :meth:`key` identifies the run."""

    model: str  # model spec, e.g. "fc[depth=2,width=200]"
    dataset: str  # dataset spec, e.g. "fashion-mnist"
    seed: int  # initialisation, basis and batch order all derive from it
    lr: float
    projection: str | None = None  # None: full-space (baseline) run
    d: int | None = None  # directions per compartment
    compartments: Compartments = None  # None / K / "layer"
    method: str = "fpd"
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: float | None = 5.0
    steps: int | None = None  # overrides epochs when given
    schedule: str = "cosine"
    warmup: float = 0.05  # fraction of the budget with a linear warm-up of the learning rate
    eval_every: int | None = None  # steps between evaluations; default once per epoch
    patience: int | None = None  # early stop after this many evaluations without improvement
    val_fraction: float = 0.1
    split_seed: int = 0

    def __post_init__(self) -> None:
        if (self.projection is None) != (self.d is None):
            raise IdbenchError("a subspace run needs both a projection and d; a baseline neither")
        if self.optimizer not in OPTIMIZERS:
            raise IdbenchError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise IdbenchError(f"unknown schedule {self.schedule!r}; choose from {SCHEDULES}")
        if not 0 <= self.warmup < 1:
            raise IdbenchError(f"warmup must be a fraction of the budget in [0, 1), got {self.warmup}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise IdbenchError(f"lr must be a positive number, got {self.lr!r}")
        if self.batch_size < 1:
            raise IdbenchError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.steps is None and (self.epochs is None or self.epochs <= 0):
            raise IdbenchError("give a positive budget: epochs > 0 or steps >= 1")
        if self.steps is not None and self.steps < 1:
            raise IdbenchError(f"steps must be >= 1, got {self.steps}")

    @property
    def is_baseline(self) -> bool:
        return self.projection is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A stable hash of every field: equal specs are the same run."""
        payload = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


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
    retries: int = 0  # diverged attempts at higher rates before this result
    lr_final: float | None = None  # the (peak) rate of the attempt this result comes from
    D: int = 0
    d_total: int | None = None
    subspace: dict[str, Any] = field(default_factory=dict)  # SubspaceModel.describe()
    history: list[dict[str, float]] = field(default_factory=list)  # per evaluation


def build_model(spec: RunSpec, data: Dataset) -> nn.Module:
    """The network of ``spec`` at its seeded initialisation, wrapped in its subspace if any."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(spec.seed, "init"))
        net = models.create(spec.model, input_shape=data.input_shape, num_classes=data.num_classes)
    net = net.to(data.x_train.device)
    if spec.is_baseline or not methods.method_class(spec.method).uses_subspace_model:
        return net
    return SubspaceModel(
        net, d=spec.d, projection=spec.projection, seed=derive_seed(spec.seed, "basis"),
        compartments=spec.compartments,
    )


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, split: str) -> tuple[float, float]:
    """(mean score, mean loss) of ``model`` on a split, in eval mode, in large batches."""
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    was_training = model.training
    model.eval()
    score_sum, loss_sum = 0.0, 0.0
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
        out = model(xb)
        score_sum += float(data.score(out, yb).sum())
        loss_sum += float(data.loss(out, yb)) * len(xb)
    model.train(was_training)
    return score_sum / len(x), loss_sum / len(x)


def _lr_at(spec: RunSpec, step: int, budget: int) -> float:
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


def train(
    model: nn.Module, data: Dataset, spec: RunSpec, *, on_eval: EvalCallback | None = None
) -> RunResult:
    """Train ``model`` (all parameters that require grad) as ``spec`` says.

    ``on_eval(index, val_score, val_loss)`` is called after every evaluation (Optuna pruning hooks
    in here and may raise to stop the run).
    """
    start = time.perf_counter()
    method = methods.create(spec.method, model=model, run_spec=spec)
    n_train = len(data.x_train)
    steps_per_epoch = math.ceil(n_train / spec.batch_size)
    budget = total_steps(spec, n_train)
    eval_every = spec.eval_every or min(steps_per_epoch, budget)
    device = data.x_train.device
    batch_gen = cpu_generator(spec.seed, "batches")
    aug_gen = torch.Generator(device=device).manual_seed(derive_seed(spec.seed, "augment"))
    torch.manual_seed(derive_seed(spec.seed, "train"))  # dropout and other in-model randomness

    history: list[dict[str, float]] = []
    best_loss, since_best = math.inf, 0
    diverged = stopped_early = False
    loss_sum, loss_count = torch.zeros((), device=device), 0
    order = torch.empty(0, dtype=torch.long)
    step = 0
    model.train()
    while step < budget:
        position = step % steps_per_epoch
        if position == 0:
            order = torch.randperm(n_train, generator=batch_gen).to(device)
        idx = order[position * spec.batch_size : (position + 1) * spec.batch_size]
        xb, yb = data.augment_batch(data.x_train[idx], aug_gen), data.y_train[idx]
        loss = method.step(lambda m: data.loss(m(xb), yb), _lr_at(spec, step, budget))
        loss_sum += loss
        loss_count += 1
        step += 1
        if step % 10 == 0 and not math.isfinite(float(loss)):
            diverged = True
            break
        if step % eval_every and step != budget:
            continue
        train_loss = float(loss_sum) / loss_count
        loss_sum, loss_count = torch.zeros((), device=device), 0
        if not math.isfinite(train_loss):
            diverged = True
            break
        val_score, val_loss = evaluate(model, data, "val")
        if not math.isfinite(val_loss):
            diverged = True
            break
        history.append({"step": step, "val_score": val_score, "val_loss": val_loss,
                        "train_loss": train_loss})
        if on_eval is not None:
            on_eval(len(history) - 1, val_score, val_loss)
        if val_loss < best_loss:
            best_loss, since_best = val_loss, 0
        else:
            since_best += 1
        if spec.patience is not None and since_best >= spec.patience and step < budget:
            stopped_early = True
            break

    info = model.describe() if isinstance(model, SubspaceModel) else {}
    info.update(method.describe())
    D = info.get("D") or sum(p.numel() for p in model.parameters())
    if diverged:
        return RunResult(
            val_score=0.0, val_loss=math.inf, test_score=0.0, train_loss=math.inf, steps=step,
            wall_s=time.perf_counter() - start, diverged=True, D=D,
            d_total=info.get("d_total"), subspace=info, history=history,
        )
    test_score, _ = evaluate(model, data, "test")
    last = history[-1]
    return RunResult(
        val_score=last["val_score"], val_loss=last["val_loss"], test_score=test_score,
        train_loss=last["train_loss"], steps=step, wall_s=time.perf_counter() - start,
        stopped_early=stopped_early, D=D, d_total=info.get("d_total"), subspace=info,
        history=history,
    )


MAX_RETRIES = 3  # retries of a diverged run, each at half the previous rate


def run(
    spec: RunSpec, data: Dataset, *, on_eval: EvalCallback | None = None,
    max_retries: int = MAX_RETRIES,
) -> RunResult:
    """Build the model of ``spec`` and train it on ``data`` (already loaded on its device).

    A diverged attempt is retried from the same initialisation at half the rate, up to
    ``max_retries`` times (0 for tuning trials, whose ``on_eval`` reports must come from one
    attempt at the trial's own rate). The spec, and so the run's key, keeps the nominal rate.
    """
    attempt, wall_s = spec, 0.0
    for retries in range(max_retries + 1):
        result = train(build_model(attempt, data), data, attempt, on_eval=on_eval)
        wall_s += result.wall_s
        result.retries, result.lr_final, result.wall_s = retries, attempt.lr, wall_s
        if not result.diverged:
            break
        attempt = dataclasses.replace(attempt, lr=attempt.lr / 2)
    return result
