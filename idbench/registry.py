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
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Generic, TypeVar

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

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
        return factory, name, options

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
