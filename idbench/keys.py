"""Content hashes: :func:`stable_key`, the one way idbench names a thing by what determines it.

Run keys, cell keys, Optuna study names and suite hashes are all ``stable_key`` of the fields that
determine the thing. Keys of stores written earlier must not change, so two rules hold:

- a field added to a keyed type after the store was written counts only when it is set to something
  other than its default (:func:`key_fields`): runs that leave it at its default keep their keys;
- the JSON text that is hashed keeps the format each key has always used: ``"json"`` (Python's
  ``json.dumps`` with sorted keys; run keys, study names, suite hashes) or ``"pydantic"`` (compact,
  in field order, values as pydantic writes them; cell keys, which hashed ``model_dump_json()``).

Example::

    stable_key({"model": "fc", "seed": 0}, 20)                  # 20 hex digits
    key_fields(spec, ORIGINAL_FIELDS)                           # what a key hashes
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Mapping

from pydantic import BaseModel
from pydantic_core import to_json

Style = Literal["json", "pydantic"]


def stable_key(payload: Mapping[str, Any] | list[Any], length: int, *, style: Style = "json") -> str:
    """The first ``length`` hex digits of the sha256 of ``payload`` as JSON (see the module doc).

    ``style="pydantic"`` takes a mapping and keeps its order (the caller's field order).
    """
    if style == "json":
        text = json.dumps(payload, sort_keys=True, default=str)
    else:
        assert isinstance(payload, Mapping), "the pydantic style hashes a mapping of fields"
        text = "{" + ",".join(
            f"{json.dumps(name)}:{to_json(value).decode()}" for name, value in payload.items()
        ) + "}"
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def key_fields(value: BaseModel, original: tuple[str, ...],
               removed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields of ``value`` that its key hashes: every field of ``original`` (the fields the key
    has always hashed, in their order; one no longer an option hashes its one value, given in
    ``removed``), then each later field (sorted by name) whose value differs from its default. A
    later field left at its default changes no key."""
    removed = removed or {}
    data = {**value.model_dump(), **removed}
    fields = type(value).model_fields
    missing = [name for name in original if name not in fields and name not in removed]
    assert not missing, f"{type(value).__name__} lost key fields {missing}: stored keys would change"
    keyed = {name: data[name] for name in original}
    for name in sorted(set(fields) - set(original)):
        if data[name] != fields[name].get_default(call_default_factory=True):
            keyed[name] = data[name]
    return keyed


def with_layer_rule(payload: dict[str, Any], compartments: object) -> dict[str, Any]:
    """``payload`` plus the rule of layer compartments when ``compartments`` is ``"layer"``.

    Layer compartments changed meaning after stores were written (d became the total number of
    directions, split across layers by :func:`idbench.subspace.split_directions`), so runs and
    cells with layer compartments name the rule: one stored under the old meaning (d per layer)
    is never reused under the new one. Other keys are unchanged.
    """
    if compartments == "layer":
        return {**payload, "layer_directions": "total-split"}
    return payload
