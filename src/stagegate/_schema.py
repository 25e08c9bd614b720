"""A small JSON Schema checker compiled into closures, for hot paths (no ``eval``, no ``exec``).

The decision service checks every request against its shipped schema; ``jsonschema`` takes
milliseconds for a deal of twenty events, this a small fraction of that. It understands only the
keywords stagegate's decision schemas use and refuses any other when it compiles a schema, so a
schema and its checker cannot drift apart silently; the tests compare its verdicts with
``jsonschema``'s.

>>> check = compile_schema({"type": "object", "required": ["id"],
...                         "properties": {"id": {"type": "string", "minLength": 1}}})
>>> check({"id": ""})
[".id: '' is shorter than 1 characters"]
>>> check({"id": "a"})
[]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sized
from typing import Any

__all__ = ["compile_located", "compile_schema", "count_values"]

Path = tuple[Any, ...]
"""A location as nested pairs ``(parent, key)`` (cheap to extend); ``()`` is the document."""
Problems = list[tuple[Any, ...]]
"""Found problems, formatted only when reported: ``(path, text, value)``."""
Rule = Callable[[Any, Path, Problems], None]

_IGNORED = frozenset({"$schema", "$id", "title", "description", "$defs", "examples", "$comment"})
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int, float),
}
_MAX_PROBLEMS = 20
_VALUE = "\0"  # where a problem's text shows the value


def _where_parts(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text or "(the document)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004 - readable


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return name == "boolean"
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, _TYPES[name])


def _json_equal(left: Any, right: Any) -> bool:
    return bool(_json_key(left) == _json_key(right))


def _json_key(value: Any) -> Any:
    """A hashable key equal for JSON-equal values: ``1`` is ``1.0``, never ``true``."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return ("number", value)  # 1 == 1.0 and their hashes agree
    if isinstance(value, list):
        return ("array", tuple(_json_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _json_key(item)) for key, item in value.items()))
    return (type(value).__name__, value)


def _anything(value: Any, path: Path, problems: Problems) -> None:
    """Any value matches (the ``true`` schema)."""


def _nothing(_value: Any, path: Path, problems: Problems) -> None:
    problems.append((path, "is not allowed here", None))


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Rule] = {}
        self.compiling: dict[str, list[Rule]] = {}

    def ref(self, pointer: str) -> Rule:
        if pointer in self.refs:
            return self.refs[pointer]
        if pointer in self.compiling:  # a recursive reference: call through a slot
            slot = self.compiling[pointer]

            def resolved(value: Any, path: Path, problems: Problems) -> None:
                slot[0](value, path, problems)

            return resolved
        if not pointer.startswith("#/"):
            msg = f"only local references are supported, got {pointer!r}"
            raise ValueError(msg)
        target: Any = self.root
        for part in pointer[2:].split("/"):
            target = target[part]
        self.compiling[pointer] = slot = []
        compiled = self.compile(target)
        slot.append(compiled)
        self.refs[pointer] = compiled
        return compiled

    def compile(self, schema: Any) -> Rule:
        if schema is True or schema == {}:
            return _anything
        if schema is False:
            return _nothing
        unknown = set(schema) - _IGNORED - _KEYWORDS
        if unknown:
            msg = f"unsupported JSON Schema keywords: {', '.join(sorted(unknown))}"
            raise ValueError(msg)
        if _is_text_schema(schema):
            return _text_rule(schema)
        rules = [
            *self._value_rules(schema),
            *self._object_rules(schema),
            *self._array_rules(schema),
            *self._text_and_number_rules(schema),
            *self._combined_rules(schema),
        ]
        if len(rules) == 1:
            return rules[0]
        frozen = tuple(rules)

        def every(value: Any, path: Path, problems: Problems) -> None:
            for rule in frozen:
                rule(value, path, problems)

        return every

    def _value_rules(self, schema: Mapping[str, Any]) -> list[Rule]:
        rules: list[Rule] = []
        if "$ref" in schema:
            rules.append(self.ref(schema["$ref"]))
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            rules.append(_type_rule(tuple(names)))
        if "const" in schema:
            rules.append(_enum_rule((schema["const"],)))
        if "enum" in schema:
            rules.append(_enum_rule(tuple(schema["enum"])))
        return rules

    def _object_rules(self, schema: Mapping[str, Any]) -> list[Rule]:
        rules: list[Rule] = []
        if "required" in schema:
            rules.append(_required_rule(tuple(schema["required"])))
        if "properties" in schema or "additionalProperties" in schema:
            props = {k: self.compile(v) for k, v in schema.get("properties", {}).items()}
            extra = schema.get("additionalProperties", True)
            rules.append(_properties_rule(props, None if extra is True else self.compile(extra)))
        if "propertyNames" in schema:
            rules.append(_names_rule(self.compile(schema["propertyNames"])))
        if "maxProperties" in schema:
            rules.append(_count_rule(dict, schema["maxProperties"], "properties"))
        if "minProperties" in schema:
            rules.append(_min_count_rule(dict, schema["minProperties"], "properties"))
        return rules

    def _array_rules(self, schema: Mapping[str, Any]) -> list[Rule]:
        rules: list[Rule] = []
        if "items" in schema:
            rules.append(_items_rule(self.compile(schema["items"])))
        if "minItems" in schema:
            rules.append(_min_count_rule(list, schema["minItems"], "items"))
        if "maxItems" in schema:
            rules.append(_count_rule(list, schema["maxItems"], "items"))
        if schema.get("uniqueItems") is True:
            rules.append(_unique_rule)
        return rules

    @staticmethod
    def _text_and_number_rules(schema: Mapping[str, Any]) -> list[Rule]:
        rules: list[Rule] = []
        if "minLength" in schema:
            rules.append(_min_length_rule(schema["minLength"]))
        if "maxLength" in schema:
            rules.append(_count_rule(str, schema["maxLength"], "characters"))
        if "pattern" in schema:
            rules.append(_pattern_rule(re.compile(schema["pattern"])))
        if "minimum" in schema or "maximum" in schema:
            rules.append(_range_rule(schema.get("minimum"), schema.get("maximum")))
        if "exclusiveMinimum" in schema or "exclusiveMaximum" in schema:
            least, most = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
            rules.append(_range_rule(least, most, open_ends=True))
        return rules

    def _combined_rules(self, schema: Mapping[str, Any]) -> list[Rule]:
        rules: list[Rule] = []
        if "oneOf" in schema:
            rules.append(_one_of_rule(tuple(self.compile(s) for s in schema["oneOf"])))
        if "anyOf" in schema:
            rules.append(_any_of_rule(tuple(self.compile(s) for s in schema["anyOf"])))
        if "allOf" in schema:
            rules.extend(self.compile(s) for s in schema["allOf"])
        if "not" in schema:
            rules.append(_not_rule(self.compile(schema["not"])))
        if "if" in schema:
            then = self.compile(schema.get("then", True))
            rules.append(
                _if_rule(self.compile(schema["if"]), then, self.compile(schema.get("else", True)))
            )
        return rules


_KEYWORDS = frozenset(
    {
        "$ref",
        "type",
        "const",
        "enum",
        "required",
        "properties",
        "additionalProperties",
        "maxProperties",
        "minProperties",
        "propertyNames",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "if",
        "then",
        "else",
    }
)


_TEXT_KEYS = frozenset({"type", "minLength", "maxLength", "pattern"}) | _IGNORED


def _is_text_schema(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return set(schema) <= _TEXT_KEYS and kind in ("string", ["string", "null"])


def _text_rule(schema: Mapping[str, Any]) -> Rule:
    """One rule for the commonest schema: text (or null) with lengths and a pattern."""
    nullable = schema["type"] != "string"
    least, most = schema.get("minLength", 0), schema.get("maxLength")
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    wanted = "string or null" if nullable else "string"

    def rule(value: Any, path: Path, problems: Problems) -> None:
        if type(value) is not str:
            if value is None and nullable:
                return
            if not isinstance(value, str):
                problems.append((path, "\0 is not of type " + wanted, value))
                return
        size = len(value)
        if size < least:
            problems.append((path, f"\0 is shorter than {least} characters", value))
        if most is not None and size > most:
            problems.append((path, f"has more than {most} characters", None))
        if pattern is not None and pattern.search(value) is None:
            problems.append((path, "\0 does not match " + repr(pattern.pattern), value))

    return rule


def _type_rule(names: tuple[str, ...]) -> Rule:
    simple = tuple(t for n in names if n not in {"integer", "boolean"} for t in _TYPES[n])
    plain = "integer" not in names and "boolean" not in names and "number" not in names
    wanted = " or ".join(names)

    whole = "integer" in names

    def rule(value: Any, path: Path, problems: Problems) -> None:
        kind = type(value)
        if (plain and kind in simple) or (whole and kind is int):
            return
        if not any(_is_type(value, name) for name in names):
            problems.append((path, "\0 is not of type " + wanted, value))

    return rule


def _enum_rule(options: tuple[Any, ...]) -> Rule:
    listed = ", ".join(_short(o) for o in options)
    texts = frozenset(o for o in options if type(o) is str or o is None)

    def rule(value: Any, path: Path, problems: Problems) -> None:
        if (type(value) is str or value is None) and value in texts:
            return
        if isinstance(value, (dict, list)) or not any(_json_equal(value, o) for o in options):
            problems.append((path, "\0 is not one of " + listed, value))

    return rule


def _required_rule(names: tuple[str, ...]) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, dict):
            for name in names:
                if name not in value:
                    problems.append((path, f"the property {name!r} is required", None))

    return rule


def _properties_rule(props: dict[str, Rule], extra: Rule | None) -> Rule:
    named = tuple(props.items())
    if extra is None or extra is _nothing:  # only the named properties matter: look them up
        known = frozenset(props)
        closed = extra is _nothing

        def named_only(value: Any, path: Path, problems: Problems) -> None:
            if not isinstance(value, dict):
                return
            for key, check in named:
                if key in value:
                    check(value[key], (path, key), problems)
            if closed and len(value) > len(known & value.keys()):
                for key in value.keys() - known:
                    _nothing(value[key], (path, key), problems)

        return named_only

    def rule(value: Any, path: Path, problems: Problems) -> None:
        if not isinstance(value, dict):
            return
        for key, item in value.items():
            check = props.get(key, extra)
            check(item, (path, key), problems)
            if len(problems) >= _MAX_PROBLEMS:
                return

    return rule


def _items_rule(check: Rule) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                check(item, (path, index), problems)
                if len(problems) >= _MAX_PROBLEMS:
                    return

    return rule


def _count_rule(kind: type[Sized], most: int, unit: str) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, kind) and len(value) > most:
            problems.append((path, f"has more than {most} {unit}", None))

    return rule


def _min_count_rule(kind: type[Sized], least: int, unit: str) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, kind) and len(value) < least:
            problems.append((path, f"has fewer than {least} {unit}", None))

    return rule


def _names_rule(check: Rule) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, dict):
            for key in value:
                check(key, (path, key), problems)
                if len(problems) >= _MAX_PROBLEMS:
                    return

    return rule


def _unique_rule(value: Any, path: Path, problems: Problems) -> None:
    if isinstance(value, list) and len({_json_key(item) for item in value}) < len(value):
        problems.append((path, "has items that are not unique", None))


def _min_length_rule(least: int) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, str) and len(value) < least:
            problems.append((path, f"\0 is shorter than {least} characters", value))

    return rule


def _pattern_rule(pattern: re.Pattern[str]) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, str) and pattern.search(value) is None:
            problems.append((path, "\0 does not match " + repr(pattern.pattern), value))

    return rule


def _range_rule(least: float | None, most: float | None, *, open_ends: bool = False) -> Rule:
    below, above = ("at most", "at least") if open_ends else ("less than", "more than")

    def rule(value: Any, path: Path, problems: Problems) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if least is not None and (value <= least if open_ends else value < least):
            problems.append((path, f"\0 is {below} {least}", value))
        if most is not None and (value >= most if open_ends else value > most):
            problems.append((path, f"\0 is {above} {most}", value))

    return rule


def _one_of_rule(options: tuple[Rule, ...]) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        matched = 0
        for option in options:
            found: Problems = []
            option(value, path, found)
            matched += not found
        if matched != 1:
            how = "none" if matched == 0 else "more than one"
            problems.append((path, "\0 matches " + how + " of the allowed forms", value))

    return rule


def _any_of_rule(options: tuple[Rule, ...]) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        for option in options:
            found: Problems = []
            option(value, path, found)
            if not found:
                return
        problems.append((path, "\0 matches none of the allowed forms", value))

    return rule


def _not_rule(check: Rule) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        found: Problems = []
        check(value, path, found)
        if not found:
            problems.append((path, "\0 matches a form that is not allowed", value))

    return rule


def _if_rule(condition: Rule, then: Rule, otherwise: Rule) -> Rule:
    def rule(value: Any, path: Path, problems: Problems) -> None:
        found: Problems = []
        condition(value, path, found)
        (otherwise if found else then)(value, path, problems)

    return rule


def compile_schema(schema: Mapping[str, Any]) -> Callable[[Any], list[str]]:
    """Compile ``schema`` into a function that returns the problems of a JSON value.

    Each problem reads ``path: what is wrong``; an empty list means the value matches. At most
    twenty problems are listed.

    Raises:
        ValueError: the schema uses a keyword this checker does not understand.
    """
    located = compile_located(schema)

    def check(value: Any) -> list[str]:
        return [f"{_where_parts(parts)}: {what}" for parts, what in located(value)]

    return check


def compile_located(
    schema: Mapping[str, Any],
) -> Callable[[Any], list[tuple[tuple[Any, ...], str]]]:
    """Like :func:`compile_schema`, each problem as ``(path as keys and indexes, what is wrong)``.

    >>> check = compile_located({"items": {"type": "string"}})
    >>> check(["a", 1])
    [((1,), '1 is not of type string')]
    """
    rule = _Compiler(schema).compile(schema)

    def check(value: Any) -> list[tuple[tuple[Any, ...], str]]:
        problems: Problems = []
        rule(value, (), problems)
        return [_located(problem) for problem in problems[:_MAX_PROBLEMS]]

    return check


def _located(problem: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
    path, text, value = problem
    parts: list[Any] = []
    while path:
        path, part = path
        parts.append(part)
    return tuple(reversed(parts)), text.replace(_VALUE, _short(value), 1)


def count_values(document: Any) -> int:
    """How many values a JSON document holds, containers included.

    >>> count_values({"a": [1, 2], "b": None})
    5
    """
    count, stack = 0, [document]
    while stack:
        value = stack.pop()
        count += 1
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count
