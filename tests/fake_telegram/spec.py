"""The published Bot API as data (``api.min.json``) and checks of requests against it.

The spec is loaded once (:func:`load_spec`). Method names are matched case-insensitively, as
Telegram does. :func:`validate` answers the question "would Telegram accept the *shape* of this
request": it returns Telegram-style error descriptions (empty when the request is fine), while
:func:`unknown_fields` lists parameters the spec does not know (Telegram ignores those silently,
which is exactly why a test should look at them).

Values are checked recursively against the spec's types: nested objects must carry their
required fields, primitives must have the right JSON type, abstract types (``BotCommandScope``,
``InputMedia``, ``MenuButton`` ...) are resolved to the subtype named by their ``type`` field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).with_name("api.min.json")

PRIMITIVES = frozenset({"Integer", "String", "Boolean", "Float", "InputFile"})

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    types: tuple[str, ...]
    required: bool
    description: str = ""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fields: Mapping[str, FieldSpec]
    returns: tuple[str, ...]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.required]


@dataclass(frozen=True)
class TypeSpec:
    name: str
    fields: Mapping[str, FieldSpec]
    subtypes: tuple[str, ...] = ()
    subtype_of: tuple[str, ...] = ()
    # (field name, value) that identifies this subtype, e.g. ("type", "chat")
    discriminator: tuple[str, str] | None = None


@dataclass
class Problem:
    """One thing wrong (or unknown) in a value checked against the spec."""

    path: str
    message: str
    unknown: bool = False  # True: a field the spec does not know (not an error by itself)


@dataclass
class Check:
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.unknown]

    @property
    def unknown(self) -> list[str]:
        return [p.path for p in self.problems if p.unknown]


_DISCRIMINATOR_RE = re.compile(r'(?:must be|always) "?([A-Za-z0-9_-]+)"?')
_INT_RE = re.compile(r"^[+-]?\d+$")


def _fields(raw: Iterable[Mapping[str, Any]]) -> dict[str, FieldSpec]:
    return {
        f["name"]: FieldSpec(
            name=f["name"],
            types=tuple(f.get("types", ())),
            required=bool(f.get("required", False)),
            description=str(f.get("description", "")),
        )
        for f in raw
    }


def split_array(type_name: str) -> tuple[int, str]:
    """``"Array of Array of X"`` -> ``(2, "X")``."""
    depth = 0
    while type_name.startswith("Array of "):
        type_name = type_name[len("Array of ") :]
        depth += 1
    return depth, type_name


class ApiSpec:
    """The Bot API spec with lookup and checking helpers."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version: str = str(data.get("version", ""))
        self.release_date: str = str(data.get("release_date", ""))
        self.methods: dict[str, MethodSpec] = {}
        for name, raw in data["methods"].items():
            self.methods[name] = MethodSpec(
                name=name,
                fields=_fields(raw.get("fields", ())),
                returns=tuple(raw.get("returns", ())),
            )
        self._methods_lower = {name.lower(): m for name, m in self.methods.items()}
        self.types: dict[str, TypeSpec] = {}
        for name, raw in data["types"].items():
            fields = _fields(raw.get("fields", ()))
            discriminator: tuple[str, str] | None = None
            if raw.get("subtype_of") and fields:
                first = next(iter(fields.values()))
                match = _DISCRIMINATOR_RE.search(first.description)
                if match and first.types == ("String",):
                    discriminator = (first.name, match.group(1))
            self.types[name] = TypeSpec(
                name=name,
                fields=fields,
                subtypes=tuple(raw.get("subtypes", ())),
                subtype_of=tuple(raw.get("subtype_of", ())),
                discriminator=discriminator,
            )

    # ------------------------------------------------------------------ methods

    def method(self, name: str) -> MethodSpec | None:
        """The method called ``name`` (case-insensitive), or None."""
        return self._methods_lower.get(name.lower())

    def missing_required(self, method: str, present: Iterable[str]) -> list[str]:
        spec = self.method(method)
        if spec is None:
            return []
        have = set(present)
        return [name for name in spec.required if name not in have]

    def unknown_fields(self, method: str, present: Iterable[str]) -> list[str]:
        spec = self.method(method)
        if spec is None:
            return list(present)
        return [name for name in present if name not in spec.fields]

    # ------------------------------------------------------------------ values

    def concrete_types(self, type_name: str) -> list[str]:
        """``type_name`` itself, or all its (recursively) concrete subtypes."""
        spec = self.types.get(type_name)
        if spec is None or not spec.subtypes:
            return [type_name]
        out: list[str] = []
        for sub in spec.subtypes:
            out.extend(self.concrete_types(sub))
        return out

    def check_value(self, types: Iterable[str], value: Any, path: str, *, lenient: bool) -> Check:
        """Check ``value`` against the union ``types``.

        ``lenient``: top-level request parameters, where Telegram converts numbers to strings
        and accepts numeric strings for integers.
        """
        check = Check()
        self._check_union(tuple(types), value, path, check, lenient=lenient)
        return check

    def check_object(self, type_name: str, value: Any, path: str = "") -> Check:
        """Check an object (e.g. one the fake server answers with) against ``type_name``."""
        check = Check()
        self._check_union((type_name,), value, path or type_name, check, lenient=False)
        return check

    def _check_union(
        self, types: tuple[str, ...], value: Any, path: str, check: Check, *, lenient: bool
    ) -> None:
        if value is None:
            return
        parsed = [split_array(t) for t in types]
        if isinstance(value, list):
            inner = tuple(("Array of " * (depth - 1)) + base for depth, base in parsed if depth > 0)
            if not inner:
                check.problems.append(Problem(path, f"must be of type {_describe(types)}"))
                return
            for i, item in enumerate(value):
                self._check_union(inner, item, f"{path}[{i}]", check, lenient=False)
            return
        scalars = [base for depth, base in parsed if depth == 0]
        if isinstance(value, dict):
            objects = [
                concrete
                for base in scalars
                if base not in PRIMITIVES
                for concrete in self.concrete_types(base)
            ]
            if not objects:
                check.problems.append(Problem(path, f"must be of type {_describe(types)}"))
                return
            self._check_object_union(objects, value, path, check)
            return
        for base in scalars:
            if _primitive_ok(base, value, lenient=lenient):
                return
        check.problems.append(Problem(path, f"must be of type {_describe(types)}"))

    def _check_object_union(
        self, candidates: list[str], value: JSONDict, path: str, check: Check
    ) -> None:
        # A discriminator (e.g. "type": "chat") picks the subtype directly.
        by_disc = [
            name
            for name in candidates
            if (spec := self.types.get(name)) is not None
            and spec.discriminator is not None
            and value.get(spec.discriminator[0]) == spec.discriminator[1]
        ]
        if by_disc:
            candidates = by_disc
        elif any(
            (spec := self.types.get(name)) is not None and spec.discriminator is not None
            for name in candidates
        ) and all(
            (spec := self.types.get(name)) is not None and spec.discriminator is not None
            for name in candidates
        ):
            disc_field = self.types[candidates[0]].discriminator
            assert disc_field is not None
            allowed = sorted(
                d[1] for name in candidates if (d := self.types[name].discriminator) is not None
            )
            check.problems.append(
                Problem(
                    f"{path}.{disc_field[0]}",
                    f"must be one of {', '.join(allowed)}",
                )
            )
            return
        best: Check | None = None
        for name in candidates:
            trial = Check()
            self._check_fields(name, value, path, trial)
            if best is None or (len(trial.errors), len(trial.unknown)) < (
                len(best.errors),
                len(best.unknown),
            ):
                best = trial
        if best is not None:
            check.problems.extend(best.problems)

    def _check_fields(self, type_name: str, value: JSONDict, path: str, check: Check) -> None:
        spec = self.types.get(type_name)
        if spec is None:  # a type the spec only names; nothing to check
            return
        for name, fspec in spec.fields.items():
            if name in value:
                self._check_union(fspec.types, value[name], f"{path}.{name}", check, lenient=False)
            elif fspec.required:
                check.problems.append(Problem(f"{path}.{name}", f"is required in {type_name}"))
        for name in value:
            if name not in spec.fields:
                check.problems.append(Problem(f"{path}.{name}", "unknown field", unknown=True))

    # ------------------------------------------------------------------ synthesis

    def synthesize(self, type_name: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """A minimal value of ``type_name`` with every required field filled in.

        Used to answer methods the fake does not model in detail with a well-formed result.
        ``overrides`` are applied to matching fields of the top-level object.
        """
        return self._synth(type_name, overrides or {}, depth=0)

    def _synth(self, type_name: str, overrides: Mapping[str, Any], depth: int) -> Any:
        arr, base = split_array(type_name)
        if arr:
            return []
        if base == "Integer":
            return 0
        if base == "Float":
            return 0.0
        if base == "Boolean":
            return False
        if base in ("String", "InputFile"):
            return ""
        concrete = self.concrete_types(base)[0]
        spec = self.types.get(concrete)
        if spec is None or depth > 6:
            return {}
        out: JSONDict = {}
        for name, fspec in spec.fields.items():
            if name in overrides:
                out[name] = overrides[name]
            elif spec.discriminator is not None and name == spec.discriminator[0]:
                out[name] = spec.discriminator[1]
            elif fspec.required:
                out[name] = self._synth(fspec.types[0], {}, depth + 1)
        return out


def _describe(types: Iterable[str]) -> str:
    return " or ".join(types)


def _primitive_ok(base: str, value: Any, *, lenient: bool) -> bool:
    if base == "Boolean":
        return isinstance(value, bool)
    if base == "Integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value.is_integer()
        return lenient and isinstance(value, str) and bool(_INT_RE.match(value.strip()))
    if base == "Float":
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float):
            return True
        if lenient and isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return False
            return True
        return False
    if base == "String":
        if isinstance(value, str):
            return True
        return lenient and isinstance(value, int | float) and not isinstance(value, bool)
    if base == "InputFile":
        return isinstance(value, str) or hasattr(value, "data")
    return False


@functools.cache
def load_spec(path: str | None = None) -> ApiSpec:
    """Load (once) the vendored spec."""
    with open(path or SPEC_PATH, encoding="utf-8") as fh:
        return ApiSpec(json.load(fh))


def find_method(name: str) -> MethodSpec | None:
    return load_spec().method(name)


def missing_required(method: str, params: Mapping[str, Any]) -> list[str]:
    """Names of required fields of ``method`` absent from ``params`` (None counts as absent)."""
    present = [k for k, v in params.items() if v is not None]
    return load_spec().missing_required(method, present)


def unknown_fields(method: str, params: Mapping[str, Any]) -> list[str]:
    """Names in ``params`` that ``method`` does not have in the spec."""
    return load_spec().unknown_fields(method, params)


def validate(method: str, params: Mapping[str, Any]) -> list[str]:
    """Telegram-style error descriptions for ``method(**params)``; empty when it would pass.

    Unknown fields are not errors (Telegram ignores them); see :func:`unknown_fields`.
    """
    spec = load_spec()
    mspec = spec.method(method)
    if mspec is None:
        return ["Not Found"]
    errors = [f"Bad Request: {name} is required" for name in missing_required(method, params)]
    for name, value in params.items():
        fspec = mspec.fields.get(name)
        if fspec is None or value is None:
            continue
        check = spec.check_value(fspec.types, value, name, lenient=True)
        errors.extend(describe_problem(p) for p in check.errors)
    return errors


def describe_problem(problem: Problem) -> str:
    """A Telegram-like description of a problem found in a request parameter."""
    head, _, rest = problem.path.partition(".")
    head = head.split("[", 1)[0]
    if not rest and "[" not in problem.path:
        return f'Bad Request: field "{head}" {problem.message}'
    inner = problem.path.rsplit(".", 1)[-1] if rest else problem.path
    return f'Bad Request: can\'t parse {head}: field "{inner}" {problem.message}'
