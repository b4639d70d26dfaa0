"""Suite files: a YAML schema for a set of measurements, checked on load and expanded into cells.

A suite names its version, its protocol defaults and its cells as grids over models, datasets,
projections, methods and optimisers. Each entry of ``grids`` is one grid: its cells are the product of its
lists, and the suite's cells are the union over the entries (in order, duplicates removed), so
repeated entries *add* grids rather than multiplying everything::

    name: quickstart
    version: "1"
    description: Two small networks on scikit-learn's digits, all four projections.
    defaults:                 # any MeasureConfig option except model/dataset/projection/method
      seeds: 2
      epochs: 10
      threshold: 0.9
      baseline: local         # or global:<score>, e.g. global:0.9
      d_min: 10
      d_max: 2000             # search range; `grid: [250, 500]` instead gives a fixed sweep
      tune_trials: 4
    grids:
      - models: ["fc[depth=1,width=64]", "fc[depth=2,width=32]"]
        datasets: [digits]
        projections: [dense, sparse, fastfood, fastjl]
        methods: [fpd]        # optional, default [fpd]
        optimizers: [sgd, adam]   # optional, default: the `optimizer` option (sgd)
      - models: ["fc[depth=1,width=64]"]
        datasets: [fashion-mnist]
        projections: [dense, fastfood]    # optional, default [dense]
        options: {epochs: 1}  # optional, overrides the defaults for this grid only
        requires: [fashion-mnist]   # optional: skip this grid (with a note) unless the data
                                    # can be read without a network

Entries are specs with options in brackets, as everywhere (``fc[depth=2,width=200]``,
``sparse[density=0.01]``). Every name is checked against its registry and every cell against
:class:`~idbench.config.MeasureConfig` when the file is loaded, so a mistake is reported before
anything runs, as one :class:`~idbench.errors.IdbenchError` naming the file and the line::

    suites/x.yaml, line 12: unknown key 'epoch' in grids[0].options. Did you mean 'epochs'? ...

Two protocol mistakes are refused the same way: a grid whose cells get no positive training
budget from the file (``epochs`` or ``steps``, in the defaults or the grid's options: a suite's
numbers depend on its budget, so the built-in default is never taken), and a grid of one d
(``grid: [250]``, a score at that d) where a search option (``d_min``, ``d_max``,
``resolution``) is set at the same level or in the grid's own options, asking for a d_int search
that a single d cannot give.

Use::

    suite = load_suite("quickstart")          # a shipped suite by name, or a path
    for cell in suite.cells():
        cell.config, cell.grid, cell.skipped  # MeasureConfig, grid index, reason or None
    suite.name, suite.version, suite.hash     # hash: sha256 of the parsed content, 12 hex
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from idbench.config import MeasureConfig
from idbench.lr.options import REMOVED, removed_message
from idbench.errors import IdbenchError
from idbench.preflight import check_spec
from idbench.keys import stable_key
from idbench.options import OPTIMIZERS, not_finite
from idbench.registry import Registry
from idbench.theta0 import recorded_text

# shipped as package data, so `idbench run quickstart` works after any install (the checkout's
# top-level suites/ is a link to this folder)
SUITES_DIR = Path(__file__).resolve().parent / "_suites"

# The four lists of a grid and the MeasureConfig field each one fills.
CELL_KEYS = {"models": "model", "datasets": "dataset", "projections": "projection",
             "methods": "method"}
# ``optimizers`` is a grid list too, but optional: without it a grid trains with the ``optimizer``
# option of its defaults (every suite written before the optimiser axis), so it is not a cell key.


class Grid(BaseModel):
    """One entry of ``grids``: the product of its lists, with its own option overrides."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1)
    datasets: list[str] = Field(min_length=1)
    projections: list[str] = Field(default_factory=lambda: ["dense"], min_length=1)
    methods: list[str] = Field(default_factory=lambda: ["fpd"], min_length=1)
    optimizers: list[str] | None = Field(None, min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    requires: list[str] = Field(default_factory=list)


class Suite(BaseModel):
    """A loaded, checked suite file (see the module docstring); build it with :func:`load_suite`."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None  # defaults to the file name without .yaml
    version: str
    description: str = ""
    defaults: dict[str, Any] = Field(default_factory=dict)
    grids: list[Grid] = Field(min_length=1)

    _path: Path | None = PrivateAttr(default=None)
    _hash: str = PrivateAttr(default="")
    _expanded: list[tuple[MeasureConfig, int]] = PrivateAttr(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return str(value) if numeric else value  # `version: 1` means "1"

    @property
    def path(self) -> Path | None:
        """The file the suite was read from."""
        return self._path

    @property
    def hash(self) -> str:
        """First 12 hex digits of the sha256 of the file's parsed content (comments and layout
        do not count)."""
        return self._hash

    def cells(self) -> list["Cell"]:
        """The suite's cells, in file order, duplicates removed.

        A cell of a grid whose ``requires`` names data that cannot be read offline is kept with a
        ``skipped`` reason (unless another, unskipped grid also has it), so callers can say what
        was left out.
        """
        reasons = [_skip_reason(grid) for grid in self.grids]
        several = len({config.optimizer for config, _ in self._expanded}) > 1
        cells: dict[str, Cell] = {}
        for config, index in self._expanded:
            key = config.model_dump_json()
            if key not in cells:
                cells[key] = Cell(config, index, reasons[index], several)
            elif cells[key].skipped is not None and reasons[index] is None:
                cells[key] = Cell(config, cells[key].grid, None, several)
        return list(cells.values())


@dataclass(frozen=True)
class Cell:
    """One measurement of a suite: its config, the index of the grid it came from, why it is
    skipped (None: it runs), and whether its label names the optimiser (the suite has several)."""

    config: MeasureConfig
    grid: int
    skipped: str | None = None
    optimizer_in_label: bool = False

    @property
    def label(self) -> str:
        """A readable name, matched by ``--only``: model/dataset/projection/method, then
        ``/c=K`` with compartments, ``/theta0=...`` and ``/said`` where set, and ``/<optimizer>``
        when the suite trains with several."""
        config = self.config
        label = f"{config.model}/{config.dataset}/{config.projection}/{config.method}"
        if config.compartments is not None:
            label += f"/c={config.compartments}"
        if config.theta0.name != "init":
            label += f"/theta0={recorded_text(config.theta0)}"
        if config.said:
            label += "/said"
        return f"{label}/{config.optimizer}" if self.optimizer_in_label else label


# --------------------------------------------------------------------------- finding suite files


def shipped_suites() -> dict[str, Path]:
    """The suite files that come with idbench (``idbench/_suites/*.yaml``), by name."""
    if not SUITES_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.yaml"))}


def resolve_suite(name_or_path: str | Path) -> Path:
    """A suite file from a path, or from the name of a shipped suite (``quickstart``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_suites()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    close = difflib.get_close_matches(str(name_or_path), list(shipped), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise IdbenchError(
        f"no suite file {str(name_or_path)!r}.{hint} `idbench ls suites` lists the shipped ones "
        f"({', '.join(shipped) or 'none found'})"
    )


def data_available(dataset: str) -> bool:
    """Whether ``dataset`` can be loaded without a network: always for datasets that need no files
    (``digits``, ``toy-sums``), and for the torchvision ones when their files are in the data root
    or in a system-wide copy (Debian's ``dataset-fashion-mnist``). Unknown names: False.
    """
    from idbench.data import DATASETS
    from idbench.data import vision
    from idbench.data.files import data_root

    try:
        _, name, _ = DATASETS.resolve(dataset)
    except IdbenchError:
        return False
    source = next((s for s in vision.SOURCES if s.name == name), None)
    if source is None:
        return True  # generated or bundled with a package: no files to fetch
    # The same places, in the same order, as vision.official_splits looks before downloading.
    if (data_root(None) / source.folder).is_dir():
        return True
    copy = source.system_copy
    return copy is not None and (vision.SYSTEM_DATASETS / copy.folder).is_dir()


def _skip_reason(grid: Grid) -> str | None:
    missing = [spec for spec in grid.requires if not data_available(spec)]
    if not missing:
        return None
    return (
        f"dataset(s) {', '.join(map(repr, missing))} not available offline: "
        "download them once (e.g. `idbench.data.load(name)` with the network on) to run this grid"
    )


# --------------------------------------------------------------------------- loading


def load_suite(name_or_path: str | Path) -> Suite:
    """Read, check and expand a suite file (a path, or the name of a shipped suite).

    Every mistake raises one :class:`IdbenchError` that names the file and the line.
    """
    path = resolve_suite(name_or_path)
    text = path.read_text(encoding="utf-8")
    where = str(path)
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise IdbenchError(f"{where}{line}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise IdbenchError(
            f"{where}, line 1: a suite file is a mapping with keys "
            f"{', '.join(Suite.model_fields)}; see `idbench.suites` for an example"
        )
    lines = _Lines(where, root)

    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        # An unknown key usually explains the other errors (a misspelt required key), so it goes
        # first; otherwise the first error in file order.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise lines.error(errors[0]) from None
    suite.name = suite.name or path.stem
    suite._path = path
    suite._hash = stable_key(data, 12)
    _check_options(suite.defaults, ("defaults",), lines)
    for i, grid in enumerate(suite.grids):
        _check_options(grid.options, ("grids", i, "options"), lines)
        _check_names(grid, i, lines)
    for i in range(len(suite.grids)):  # (every name is known before a grid's protocol is read)
        _check_budget(suite, i, lines)
        _check_single_d(suite, i, lines)
    suite._expanded = _expand(suite, lines)
    return suite


_OPTION_KEYS = [k for k in MeasureConfig.model_fields if k not in CELL_KEYS.values()]


def _check_options(options: dict[str, Any], loc: tuple[Any, ...], lines: "_Lines") -> None:
    """Keys of ``defaults`` / ``options`` must be MeasureConfig options other than the cell keys."""
    for key in options:
        if key in CELL_KEYS.values() or key in CELL_KEYS:
            list_key = key if key in CELL_KEYS else f"{key}s"
            raise lines.at((*loc, key), f"{key!r} cannot be an option: list it under "
                           f"'{list_key}' in a grid")
        if key in REMOVED:
            raise lines.at((*loc, key), removed_message(key))
        if key not in _OPTION_KEYS:
            raise lines.at((*loc, key), _unknown_key(key, _format_loc(loc), _OPTION_KEYS))


def _check_names(grid: Grid, index: int, lines: "_Lines") -> None:
    """Every spec names a registered component and only options its factory takes."""
    from idbench.data import DATASETS
    from idbench.methods import METHODS
    from idbench.models import MODELS
    from idbench.projections import PROJECTIONS

    registries: dict[str, Registry[Any]] = {
        "models": MODELS, "datasets": DATASETS, "projections": PROJECTIONS, "methods": METHODS,
        "requires": DATASETS,
    }
    for key, registry in registries.items():
        for j, spec in enumerate(getattr(grid, key)):
            loc = ("grids", index, key, j)
            try:
                check_spec(registry, spec)
            except IdbenchError as exc:
                raise lines.at(loc, f"in {_format_loc(loc)}: {exc}") from None
    for j, optimizer in enumerate(grid.optimizers or []):
        if optimizer not in OPTIMIZERS:
            close = difflib.get_close_matches(str(optimizer), OPTIMIZERS, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise lines.at(("grids", index, "optimizers", j),
                           f"in grids[{index}].optimizers[{j}]: unknown optimizer {optimizer!r}."
                           f"{hint} Choose from {', '.join(OPTIMIZERS)}")
    if grid.optimizers is not None and "optimizer" in grid.options:
        raise lines.at(("grids", index, "options", "optimizer"),
                       f"grids[{index}] lists optimizers and sets the option 'optimizer': "
                       "keep one (the list)")


BUDGET_KEYS = ("epochs", "steps")
SEARCH_KEYS = ("d_min", "d_max", "resolution")  # the options that shape a d_int search


def _source(suite: Suite, index: int, key: str) -> tuple[Any, ...] | None:
    """Where the option ``key`` of grid ``index``'s cells is set: its options, else the
    defaults; None where neither sets it."""
    if key in suite.grids[index].options:
        return ("grids", index, "options", key)
    return ("defaults", key) if key in suite.defaults else None


def _check_budget(suite: Suite, index: int, lines: "_Lines") -> None:
    """Every grid trains for a budget its file states: epochs or steps, positive, set in the
    defaults or the grid's options. A suite's numbers depend on its budget, so none is taken
    from the built-in default, and a zero budget would train nothing."""
    options = {**suite.defaults, **suite.grids[index].options}
    for key in BUDGET_KEYS:
        value = options.get(key)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and value <= 0:
            loc = _source(suite, index, key)
            raise lines.at(loc, f"{_format_loc(loc)}: a budget of {value} {key} trains nothing: "
                           f"give {key} > 0 (in the cells of grids[{index}])")
    if all(options.get(key) is None for key in BUDGET_KEYS):
        loc = _source(suite, index, "epochs") or _source(suite, index, "steps") or ("grids", index)
        raise lines.at(loc, f"grids[{index}] has no training budget: set epochs (or steps) to a "
                       "positive number in defaults or in the grid's options")


def _check_single_d(suite: Suite, index: int, lines: "_Lines") -> None:
    """A grid of one d measures the score at that d, which has no d_int to search for: a
    search option (d_min, d_max, resolution) set where that grid is set, or in the grid's own
    options, asks for a search the cells would not run."""
    grid_loc = _source(suite, index, "grid")
    if grid_loc is None:
        return
    own = suite.grids[index].options
    scope = own if grid_loc[0] == "grids" else {**suite.defaults, **own}
    points = scope["grid"]
    if not isinstance(points, list) or len(set(map(str, points))) != 1:
        return
    asked = [key for key in SEARCH_KEYS if key in scope]
    if asked:
        loc = _source(suite, index, asked[0])
        raise lines.at(loc, f"{_format_loc(loc)}: grid [{points[0]}] measures the score at one "
                       f"d, which has no d_int to search for, but {', '.join(asked)} asks for a "
                       f"search: drop {', '.join(asked)} to measure the score at d = {points[0]}, "
                       "or set grid: null to search d_int")


def _expand(suite: Suite, lines: "_Lines") -> list[tuple[MeasureConfig, int]]:
    """Every (config, grid index) of the suite, in order; each config checked by MeasureConfig."""
    out: list[tuple[MeasureConfig, int]] = []
    for i, grid in enumerate(suite.grids):
        options = {**suite.defaults, **grid.options}
        optimizers = grid.optimizers or [options.get("optimizer")]
        for cell in itertools.product(grid.models, grid.datasets, grid.projections, grid.methods,
                                      optimizers):
            fields = dict(zip(("model", "dataset", "projection", "method", "optimizer"), cell))
            if fields["optimizer"] is None:  # no list and no option: MeasureConfig's default
                del fields["optimizer"]
            try:
                config = MeasureConfig(**{**options, **fields})
            except ValidationError as exc:
                raise _config_error(exc, suite, i, lines) from None
            out.append((config, i))
    return out


def _config_error(exc: ValidationError, suite: Suite, index: int, lines: "_Lines") -> IdbenchError:
    """Point a MeasureConfig error at the option that caused it (grid options, then defaults)."""
    error = exc.errors()[0]
    msg = not_finite(error["input"]) if error["type"] == "finite_number" else _clean(error["msg"])
    field = error["loc"][0] if error["loc"] else _first_named(msg, suite, index)
    if field == "optimizer" and suite.grids[index].optimizers is not None:
        loc: tuple[Any, ...] = ("grids", index, "optimizers")
    elif field in suite.grids[index].options:
        loc = ("grids", index, "options", field)
    elif field in suite.defaults:
        loc = ("defaults", field)
    else:
        loc = ("grids", index)
    what = f"{_format_loc(loc)}: {msg}"
    if field is not None and field not in loc and not re.search(rf"\b{field}\b", msg):
        what = f"{_format_loc(loc)}: {field}: {msg}"
    return lines.at(loc, f"{what} (in the cells of grids[{index}])")


def _first_named(msg: str, suite: Suite, index: int) -> str | None:
    """The option a check across several options is about: of those the file sets for the grid,
    the one its message names first (messages name options by their keys), None if it names none."""
    options = {**suite.defaults, **suite.grids[index].options}
    found = [(m.start(), key) for key in options if (m := re.search(rf"\b{key}\b", msg))]
    return min(found)[1] if found else None


# --------------------------------------------------------------------------- lines and messages


class _Lines:
    """Maps a location in the parsed YAML (keys and list indices) to a line of the file."""

    def __init__(self, where: str, root: yaml.Node | None) -> None:
        self.where = where
        self.root = root

    def line(self, loc: tuple[Any, ...]) -> int:
        """1-based line of the deepest node along ``loc`` (the key itself for the last key)."""
        node = self.root
        if node is None:
            return 1
        line = node.start_mark.line
        for depth, part in enumerate(loc):
            last = depth == len(loc) - 1
            if isinstance(node, yaml.MappingNode):
                match = next((kv for kv in node.value if kv[0].value == str(part)), None)
                if match is None:
                    break
                key_node, node = match
                line = key_node.start_mark.line if last else node.start_mark.line
                if not last and not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
                    line = node.start_mark.line
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line
            else:
                break
        return line + 1

    def at(self, loc: tuple[Any, ...], message: str) -> IdbenchError:
        return IdbenchError(f"{self.where}, line {self.line(loc)}: {message}")

    def error(self, error: Any) -> IdbenchError:
        """One pydantic error of the Suite schema as an IdbenchError with the file and line."""
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            parent, key = loc[:-1], loc[-1]
            valid = list(Grid.model_fields if parent[:1] == ("grids",) else Suite.model_fields)
            return self.at(loc, _unknown_key(key, _format_loc(parent), valid))
        if kind == "missing":
            parent = loc[:-1]
            inside = _format_loc(parent) or "the suite"
            return self.at(parent, f"missing key {loc[-1]!r} in {inside}")
        if kind == "too_short":
            return self.at(loc, f"{_format_loc(loc)} is empty: list at least one entry")
        return self.at(loc, f"{_format_loc(loc) or 'suite'}: {_clean(error['msg'])}"
                       f" (got {error.get('input')!r})")


def _unknown_key(key: Any, parent: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    inside = f" in {parent}" if parent else ""
    return f"unknown key {key!r}{inside}{hint}; valid keys: {', '.join(valid)}"


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


__all__ = [
    "Cell", "Grid", "Suite", "data_available", "load_suite", "resolve_suite", "shipped_suites",
]
