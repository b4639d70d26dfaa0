"""Where a run's starting point theta0 comes from: the option ``theta0`` of runs and cells.

Intrinsic dimensions are mostly quoted for fine-tuning, not for training from scratch, and the
starting point changes the answer (Larsen et al. 2022: a short burn-in of ordinary training lowers
it sharply; Aghajanyan et al. 2020: pretrained models need few directions). So theta0 is a spec:

- ``init`` (the default): the network's own seeded initialisation;
- ``burn-in[steps=T,lr=L]`` or ``burn-in[epochs=F,lr=L]``: the initialisation after T steps (or
  the fraction F of an epoch) of the run's own full-space training at rate ``lr``, seeded like the
  run (its batches, its constant rate after the run's warm-up fraction). A burn-in of 0 steps is
  ``init`` itself (the same spec, and so the same key);
- ``checkpoint[path=FILE]``: a state dict saved with ``torch.save``; ``checkpoint[run=KEY,
  store=DIR]``: the final model of a run idbench trained and stored in DIR (``idbench pretrain``
  saves it as ``DIR/checkpoints/KEY.pt``). Without ``store``, the run is looked up in the
  measurement's own store (``--out``) and in the folders it reuses (``--reuse``; a published board
  ships the checkpoints its cells start from), so a suite names its pretrained models by key
  alone. A classifier head whose shapes do not fit the task keeps the network's seeded
  initialisation instead (``theta0_head = "reinitialised"``); any other mismatch is an error that
  lists the tensors.

A checkpoint file is keyed by its sha256, not by where it lies, so a moved file keeps its runs'
keys and an overwritten one does not reuse them; a stored run's model is keyed by the run's key
(its spec determines it, as it does every run), so a board re-measured elsewhere from its stored
runs keeps its keys. Rows record the file's sha256 either way, and the spec without ``store``
(where a file lies does not change a number). The baseline of a cell starts from the same
theta0 as its probes (the option is one of the shared training options).

Example::

    spec = parse("burn-in[epochs=0.5,lr=0.05]")
    burn_in_steps(spec, steps_per_epoch=422)          # 211
    head = load_checkpoint(net, checkpoint_path(parse("checkpoint[path=net.pt]")))
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from idbench.errors import IdbenchError
from idbench.registry import Spec

if TYPE_CHECKING:
    from torch import nn

KINDS = {"init": set(), "burn-in": {"steps", "epochs", "lr"}, "checkpoint": {"path", "run", "store"}}
INIT = Spec("init", text="init")
CHECKPOINTS = "checkpoints"  # the folder of a store that holds its runs' saved models


def parse(text: str | Spec) -> Spec:
    """``text`` as a checked theta0 spec; a burn-in of no steps is :data:`INIT`."""
    spec = Spec.parse(text)
    if spec.name not in KINDS:
        raise IdbenchError(f"unknown theta0 {spec.name!r}; choose from init, "
                           "burn-in[steps=T,lr=L] (or epochs=F), checkpoint[path=FILE] or "
                           "checkpoint[run=KEY,store=DIR]")
    unknown = sorted(set(spec.options) - KINDS[spec.name])
    if unknown:
        raise IdbenchError(f"theta0 {spec.name} takes no option {', '.join(unknown)}; it takes "
                           f"{', '.join(sorted(KINDS[spec.name])) or 'none'}")
    if spec.name == "burn-in":
        return _burn_in(spec)
    if spec.name == "checkpoint" and ("path" in spec.options) == ("run" in spec.options):
        raise IdbenchError(f"theta0 {spec}: give either path=FILE or run=KEY (with store=DIR)")
    if spec.name == "checkpoint" and "store" in spec.options and "run" not in spec.options:
        raise IdbenchError(f"theta0 {spec}: store=DIR goes with run=KEY")
    return spec


def _burn_in(spec: Spec) -> Spec:
    """A checked burn-in spec: exactly one length (steps >= 0 or epochs >= 0) and a rate."""
    options = spec.options
    if ("steps" in options) == ("epochs" in options):
        raise IdbenchError(f"theta0 {spec}: give its length as steps=T or as epochs=F (one)")
    length = options.get("steps", options.get("epochs"))
    integral = "epochs" in options or isinstance(length, int)
    if isinstance(length, bool) or not isinstance(length, (int, float)) or not integral or not (
            math.isfinite(length) and length >= 0):
        raise IdbenchError(f"theta0 {spec}: the burn-in length must be a whole number of steps "
                           ">= 0 or a number of epochs >= 0")
    if length == 0:
        return INIT
    lr = options.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (
            math.isfinite(lr) and lr > 0):
        raise IdbenchError(f"theta0 {spec}: give the burn-in's learning rate, lr=L with L > 0")
    return spec


def _validate(value: Any) -> Spec:
    try:
        return parse(value)
    except IdbenchError as exc:
        raise ValueError(str(exc)) from None


# a pydantic field holding a theta0 spec, serialised as it was written (a zero burn-in as "init")
Theta0Field = Annotated[Spec, PlainValidator(_validate), PlainSerializer(str, return_type=str),
                        WithJsonSchema({"type": "string"})]


def burn_in_steps(spec: Spec, steps_per_epoch: int) -> int:
    """The optimiser steps of a burn-in theta0 (0 for any other)."""
    if spec.name != "burn-in":
        return 0
    if "steps" in spec.options:
        return int(spec.options["steps"])
    return round(spec.options["epochs"] * steps_per_epoch)


def checkpoint_path(spec: Spec) -> Path:
    """The file of a checkpoint theta0: its path, or the saved model of a stored run."""
    if "path" in spec.options:
        return Path(str(spec.options["path"])).expanduser()
    return Path(str(spec.options.get("store", "."))).expanduser() / CHECKPOINTS / \
        f"{spec.options['run']}.pt"


def key_text(spec: Spec) -> str:
    """What keys hash for ``spec``: its text; a checkpoint file by its digest, a stored run's
    model by the run's key (which determines it, wherever the store lies)."""
    if spec.name != "checkpoint":
        return str(spec)
    if "run" in spec.options:
        return f"checkpoint[run={spec.options['run']}]"
    return f"checkpoint[sha256={digest(checkpoint_path(spec))}]"


def recorded_text(spec: Spec) -> str:
    """``spec`` as rows record it: a stored run's checkpoint without the folder it was found in."""
    if spec.name == "checkpoint" and "store" in spec.options:
        return str(Spec(spec.name, {k: v for k, v in spec.options.items() if k != "store"}))
    return str(spec)


def located(spec: Spec, stores: Sequence[Path]) -> Spec:
    """``spec``, a stored run's checkpoint without ``store`` given the first of ``stores`` that
    holds it (the first of them if none does, where the missing file is then reported); any other
    spec as it is."""
    if spec.name != "checkpoint" or "run" not in spec.options or "store" in spec.options:
        return spec
    name = f"{spec.options['run']}.pt"
    found = next((s for s in stores if (Path(s) / CHECKPOINTS / name).is_file()), stores[0])
    return Spec(spec.name, {**spec.options, "store": str(found)})


def with_digest(payload: dict[str, Any]) -> dict[str, Any]:
    """A key's ``payload`` with its ``theta0`` (present when not ``init``) as :func:`key_text`."""
    if "theta0" not in payload:
        return payload
    return {**payload, "theta0": key_text(parse(payload["theta0"]))}


def recorded_digest(spec: Spec) -> str | None:
    """The sha256 a row records for a checkpoint theta0 (None for any other)."""
    return digest(checkpoint_path(spec)) if spec.name == "checkpoint" else None


def digest(path: Path) -> str:
    """The sha256 of a checkpoint file (cached per path, size and modification time)."""
    try:
        stat = path.stat()
    except OSError:
        raise IdbenchError(f"theta0 checkpoint {path} does not exist (or cannot be read): give "
                           "the file of a saved state dict, or run `idbench pretrain` first") from None
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_checkpoint(net: nn.Module, path: Path) -> str:
    """Load the state dict in ``path`` into ``net``; returns ``"kept"`` or ``"reinitialised"``
    (the head: the last layer with parameters, left at ``net``'s initialisation where its shapes
    do not fit). Any other missing, extra or misshapen tensor is an :class:`IdbenchError`
    that lists them all, and ``net`` is left as it was."""
    import torch

    digest(path)  # a clear error for a missing file
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise IdbenchError(f"cannot read theta0 checkpoint {path}: {type(exc).__name__}: {exc}") \
            from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise IdbenchError(f"theta0 checkpoint {path} is not a state dict (a dict of tensors)")
    own = net.state_dict()
    head = _head_names(net)
    misfit = [name for name in own if name in state and state[name].shape != own[name].shape]
    problems = [f"{name} missing" for name in own if name not in state]
    problems += [f"{name} not in the model" for name in state if name not in own]
    problems += [f"{name} {tuple(state[name].shape)} vs model {tuple(own[name].shape)}"
                 for name in misfit if name not in head]
    if problems:
        raise IdbenchError(f"theta0 checkpoint {path} does not match the model: "
                           + "; ".join(problems))
    reinitialised = bool(misfit)
    kept = {name: (own[name] if reinitialised and name in head else value)
            for name, value in state.items()}
    net.load_state_dict(kept)
    return "reinitialised" if reinitialised else "kept"


def _head_names(net: nn.Module) -> set[str]:
    """The state-dict names of the classifier head: those of the module that owns the last
    parameter (its weight and bias, with any buffers it keeps)."""
    prefix = list(net.named_parameters())[-1][0].rpartition(".")[0]
    return {name for name in net.state_dict() if name.rpartition(".")[0] == prefix}


__all__ = ["INIT", "KINDS", "Theta0Field", "burn_in_steps", "checkpoint_path", "digest",
           "key_text", "load_checkpoint", "located", "parse", "recorded_digest", "recorded_text",
           "with_digest"]
