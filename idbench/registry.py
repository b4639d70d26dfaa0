"""One generic registry: register factories by name, create them from a spec, list by wildcard.

A *spec* is a name with optional bracketed options, the same syntax on the command line, in suite
files and in Python::

    fc[depth=2,width=200]      ->  ("fc", {"depth": 2, "width": 200})
    timm:resnet18[drop_rate=0.1]

Every kind of component (models, datasets, projections, methods) has one :class:`Registry`. Unknown
names get a "did you mean" suggestion, and options a factory does not accept are refused with the
list of those it does, before anything is built.

Example::

    MODELS = Registry("model")

    @MODELS.register("fc")
    def fc(*, depth: int = 2, width: int = 200, input_shape, num_classes): ...

    MODELS.create("fc[depth=1]", input_shape=(1, 28, 28), num_classes=10)
    MODELS.list("fc*")
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import inspect
import math
import re
import threading
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Generic, TypeVar

from pydantic import (PlainSerializer, PlainValidator, TypeAdapter, ValidationError,
                      WithJsonSchema)

from idbench.errors import IdbenchError

T = TypeVar("T")

_SPEC = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.:\-/]+)\s*(?:\[(?P<opts>.*)\])?\s*$")


@dataclass(frozen=True)
class Spec:
    """A parsed spec: the registered name and its typed options (``str(spec)`` writes it back).

    A spec parsed from text keeps that text (``text``) and writes it back unchanged: run and cell
    keys hash the spec as it was written, so a stored run keeps its key. Equality and hashing look
    at the name and options only.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    text: str = field(default="", compare=False, repr=False)

    @classmethod
    def parse(cls, spec: "str | Spec") -> "Spec":
        """``spec`` parsed (a Spec is returned as it is)."""
        if isinstance(spec, Spec):
            return spec
        return cls(*parse_spec(spec), text=spec)

    def __str__(self) -> str:
        return self.text or format_spec(self.name, self.options)


def _validate_spec(value: Any) -> Spec:
    """A pydantic field's value as a :class:`Spec` (a parse error becomes a validation error)."""
    try:
        return Spec.parse(value)
    except IdbenchError as exc:
        raise ValueError(str(exc)) from None


# A pydantic field holding a spec: text is parsed once, on construction; it serialises (model_dump,
# JSON, keys) back to the text it was given
SpecField = Annotated[
    Spec,
    PlainValidator(_validate_spec),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string"}),
]


# CPython 3.11's AST constructor can raise a spurious SystemError ("AST constructor recursion depth
# mismatch", python/cpython#106905) when threads parse at once, as a measurement's draws do
_AST_LOCK = threading.Lock()


def _parse_value(text: str) -> Any:
    """A typed option value: a Python literal (number, string, tuple, list...), true/false/none in
    any case, else the text itself (a bare word such as ``relu``)."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        with _AST_LOCK:
            return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split_options(raw: str, spec: str) -> list[str]:
    """``raw`` split at the commas outside brackets, parentheses, braces and quotes."""
    parts, current, quote = [], [], ""
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in raw:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in closing:
            if not stack or stack.pop() != closing[char]:
                raise IdbenchError(f"cannot parse {spec!r}: unbalanced {char!r} in its options")
        elif char == "," and not stack:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if stack or quote:
        raise IdbenchError(f"cannot parse {spec!r}: unclosed {(stack or [quote])[-1]!r} in its options")
    parts.append("".join(current))
    return parts


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name[key=value,...]"`` into the name and a dict of typed option values.

    Values may be numbers, booleans, strings, tuples or lists: ``x[a=(1,2),b=[3,4],c='p,q']``.
    """
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise IdbenchError(
            f"cannot parse {spec!r}: write a name, optionally with options in brackets, "
            "e.g. 'fc[depth=2,width=200]'"
        )
    options: dict[str, Any] = {}
    raw = match.group("opts")
    if raw and raw.strip():
        for part in _split_options(raw, spec):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise IdbenchError(
                    f"cannot parse option {part.strip()!r} in {spec!r}: write key=value, "
                    "separated by commas"
                )
            options[key.strip()] = _parse_value(value)
    return match.group("name"), options


def format_spec(name: str, options: dict[str, Any] | None = None) -> str:
    """The inverse of :func:`parse_spec`, with options sorted so equal specs format equally."""
    if not options:
        return name
    inner = ",".join(f"{k}={options[k]}" for k in sorted(options))
    return f"{name}[{inner}]"


@dataclass(frozen=True)
class Option:
    """One option of a registered component: its name, type and default, as written in its
    factory's signature (``default`` empty: required)."""

    name: str
    type: str
    default: str


@dataclass(frozen=True)
class Entry:
    """A registered component as ``idbench ls`` shows it (:meth:`Registry.describe`)."""

    name: str
    summary: str
    options: list[Option]
    takes_more: bool  # also passes other options on (e.g. timm's to its model)


def _annotation_text(annotation: Any) -> str:
    """An annotation as written in the source (``float | None``); "any" when there is none."""
    if annotation is inspect.Parameter.empty:
        return "any"
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _value_text(value: Any) -> str:
    """A default as a spec writes it: ``true``, ``none``, ``gaussian``, ``0.01``."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """The evaluated annotations of a factory (a class: of its ``__init__``); none where they
    cannot be evaluated."""
    try:
        return typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)
    except Exception:  # an annotation naming something its module does not import
        return {}


def _example(annotation: Any) -> str:
    """A value of the type ``annotation``, for an error message."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    first = args[0]
    if typing.get_origin(first) is typing.Literal:
        return str(typing.get_args(first)[0])
    return {bool: "true", int: "2", float: "0.1", str: "text"}.get(first, "...")


class Registry(Generic[T]):
    """Named factories of one kind of component.

    ``context`` names the factory parameters that callers supply themselves (a model's input shape,
    a projection's D and d...): a spec may not set them. A name ending in ``:`` registers a prefix
    family (e.g. ``timm:``): ``create("timm:resnet18")`` calls that factory with ``name="resnet18"``.
    Options are checked in one place, :meth:`check`, both before anything runs (suite files) and
    when a component is built.
    """

    def __init__(self, kind: str, *, context: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.context = frozenset(context) | {"name"}
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name``."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, sorted."""
        return sorted(n for n in self._factories if fnmatch.fnmatch(n, pattern))

    def __contains__(self, spec: str | Spec) -> bool:
        try:
            self.resolve(spec)
        except IdbenchError:
            return False
        return True

    def resolve(self, spec: str | Spec) -> tuple[Callable[..., T], str, dict[str, Any]]:
        """The factory, the canonical name and the options of ``spec``; raises on unknown names."""
        parsed = Spec.parse(spec)
        name, options = parsed.name, dict(parsed.options)
        if name in self._factories:
            return self._factories[name], name, options
        prefix, sep, rest = name.partition(":")
        if sep and f"{prefix}:" in self._factories and rest:
            return self._factories[f"{prefix}:"], name, {"name": rest, **options}
        close = difflib.get_close_matches(name, list(self._factories), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise IdbenchError(
            f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {', '.join(self.list())}"
        )

    def describe(self, name: str) -> "Entry":
        """What ``idbench ls`` shows of the registered ``name``: the first paragraph of its
        factory's docstring (of its module's, where the factory has none of its own) and the
        options a spec may set, each with its type and default, read from the factory's
        signature."""
        factory = self._factories[name]
        doc = factory.__dict__.get("__doc__") if isinstance(factory, type) else factory.__doc__
        if not doc:
            doc = getattr(inspect.getmodule(factory), "__doc__", None) or ""
        summary = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()).replace("``", "`")
        if summary.endswith((",", ":")):  # the paragraph goes on with a formula
            summary = summary[:-1] + "..."
        options = [Option(p.name, _annotation_text(p.annotation),
                          "" if p.default is p.empty else _value_text(p.default))
                   for p in self._parameters(factory)]
        takes_more = any(p.kind is p.VAR_KEYWORD
                         for p in inspect.signature(factory).parameters.values())
        return Entry(name, summary, options, takes_more)

    def _parameters(self, factory: Callable[..., T]) -> list[inspect.Parameter]:
        """The factory's parameters a spec may set (not the caller's ``context``)."""
        return [p for p in inspect.signature(factory).parameters.values()
                if p.name not in self.context
                and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def options(self, spec: str | Spec) -> dict[str, Any]:
        """The options a factory accepts with their defaults (keyword-only parameters)."""
        factory, _, _ = self.resolve(spec)
        params = inspect.signature(factory).parameters.values()
        return {
            p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    def check(self, spec: str | Spec,
              context: frozenset[str] = frozenset()) -> tuple[Callable[..., T], str, dict[str, Any]]:
        """Resolve ``spec`` and check its options: each must be a parameter of the factory that
        is not supplied by the caller (the registry's ``context``, or ``context`` given here)."""
        factory, name, options = self.resolve(spec)
        params = inspect.signature(factory).parameters
        supplied = self.context | context
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            bad = [k for k in options if k in supplied - {"name"}]
        else:
            bad = [k for k in options if k not in params or (k in supplied and k != "name")]
        if bad:
            accepted = sorted(k for k, p in params.items()
                              if k not in supplied and p.kind is not p.VAR_KEYWORD)
            raise IdbenchError(
                f"{self.kind} {name!r} does not take option(s) {', '.join(map(repr, bad))}; "
                f"its options are: {', '.join(accepted) or '(none)'}"
            )
        self._check_types(factory, name, options)
        return factory, name, options

    def _check_types(self, factory: Callable[..., T], name: str, options: dict[str, Any]) -> None:
        """Each option's value has the type its parameter is annotated with (a number where a
        number is expected, true/false where a flag is: ``bool("abc")`` would be true). Ranges
        are the factory's to check, when it builds (idbench.preflight builds every component
        before anything is written)."""
        hints = _type_hints(factory)
        for key, value in options.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise IdbenchError(f"{self.kind} {name!r}: option {key}={value} is not a finite "
                                   "number; give a finite value")
            if key not in hints or key in self.context:
                continue
            try:
                TypeAdapter(hints[key]).validate_python(value, strict=True)
            except ValidationError:
                shown = _annotation_text(inspect.signature(factory).parameters[key].annotation)
                raise IdbenchError(
                    f"{self.kind} {name!r}: option {key}={value!r} is not of its type {shown}; "
                    f"e.g. {name}[{key}={_example(hints[key])}]"
                ) from None

    def create(self, spec: str | Spec, **context: Any) -> T:
        """Build the component named by ``spec``.

        ``context`` holds what the caller supplies (input shape, D and d, device...); options in the
        spec override nothing in the context and must be parameters of the factory (:meth:`check`).
        """
        factory, name, options = self.check(spec, frozenset(context))
        try:
            inspect.signature(factory).bind(**context, **options)
        except TypeError as exc:
            raise IdbenchError(f"bad options for {self.kind} {spec!s}: {exc}") from exc
        return factory(**context, **options)
