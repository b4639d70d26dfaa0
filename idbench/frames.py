"""Row models as Polars frames: their schema (:func:`polars_schema`) and the :func:`upgrade` path.

The run store and published leaderboards hold rows of :mod:`idbench.schema` as Parquet; both read
rows of an older schema version through :func:`upgrade`, which fills the columns added since (and
recomputes d_int of measurement rows written while it was the smallest passing probe).
"""

from __future__ import annotations

import json
import os
import types
import typing
from typing import Any

import polars as pl
from pydantic import BaseModel

from idbench.errors import IdbenchError

_POLARS_TYPES: dict[Any, pl.DataType] = {
    int: pl.Int64(), float: pl.Float64(), str: pl.String(), bool: pl.Boolean()
}


def polars_schema(model: type[BaseModel]) -> pl.Schema:
    """The Polars schema of a row model: its fields in order, ``X | None`` as nullable ``X``."""
    schema = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if typing.get_origin(annotation) is typing.Literal:
            annotation = type(typing.get_args(annotation)[0])
        schema[name] = _POLARS_TYPES[annotation]
    return pl.Schema(schema)


def upgrade(frame: pl.DataFrame, model: type[BaseModel],
            where: str | os.PathLike[str]) -> pl.DataFrame:
    """``frame`` (rows of ``model`` of this or an older schema version) in the current schema.

    The upgrade path for results written before a column was added: a missing column is filled
    with its field's default, or null where the field is optional; a column whose type widened
    (``int`` to ``float``) is cast. A missing column with neither (a required field) means the
    rows cannot be read as they are: that is an error naming the column and ``where`` they are.
    """
    schema = polars_schema(model)
    if "d_int" in model.model_fields and "d_int" in frame.columns and frame["d_int"].dtype.is_integer():
        frame = _d_int_as_crossing(frame)
    if frame.schema == schema:
        return frame
    fill = []
    for name, dtype in schema.items():
        if name in frame.columns:
            continue
        field = model.model_fields[name]
        nullable = type(None) in typing.get_args(field.annotation)
        if field.is_required() and not nullable:
            version = frame["schema_version"][0] if "schema_version" in frame.columns else None
            raise IdbenchError(
                f"{where} holds results of schema version {version} without the column {name!r} "
                "that this idbench needs: rerun into a fresh --out (or read them with the version "
                "that wrote them)"
            )
        value = None if field.is_required() else field.get_default(call_default_factory=True)
        fill.append(pl.lit(value, dtype=dtype).alias(name))
    return frame.with_columns(fill).select([pl.col(n).cast(t) for n, t in schema.items()])


def _d_int_as_crossing(frame: pl.DataFrame) -> pl.DataFrame:
    """Measurement rows written while d_int was the smallest passing probe (an integer column; that
    number is d_hi now) with d_int and its interval recomputed from their stored probes: the
    statistic d_int holds now (:func:`idbench.estimate.estimate`, against the stored threshold
    score), so an older row never shows an interval that excludes its estimate."""
    from idbench.estimate import estimate
    from idbench.search import Probe, curve_of

    found = []
    for probes, threshold in frame.select("probes", "threshold_score").iter_rows():
        parsed = [Probe.from_dict(p) for p in json.loads(probes or "[]")]
        result = estimate(curve_of(parsed, threshold))
        found.append((result.d_int, result.ci_low, result.ci_high))
    d_int, low, high = zip(*found) if found else ((), (), ())
    return frame.with_columns(pl.Series("d_int", d_int, pl.Float64),
                              pl.Series("ci_low", low, pl.Float64),
                              pl.Series("ci_high", high, pl.Float64))
