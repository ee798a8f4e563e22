"""Config value types: a key's kind, its parsing of a text value into a typed
one, its range check and its text form. Every area's keys are `Key` values;
`actormq.conf.schema` collects them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any


class Kind(enum.Enum):
    """The type of a config value; the value is the word used in messages and docs."""

    INT = "integer"
    FLOAT = "number"
    BOOL = "boolean"
    STR = "string"
    ENUM = "enum"
    BYTESIZE = "byte size"
    DURATION = "duration"


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})
_NUMBER_WITH_UNIT = re.compile(r"\s*(\d+)\s*([a-zA-Z]*)\s*")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected true/false (or on/off, yes/no, 1/0), got {text!r}")


def _parse_with_unit(text: str, units: dict[str, int], expected: str) -> int:
    match = _NUMBER_WITH_UNIT.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in units:
        raise ValueError(f"expected {expected}, got {text!r}")
    return int(match.group(1)) * units[unit]


def _parse_bytesize(text: str) -> int:
    return _parse_with_unit(text, _BYTE_UNITS, "a byte size (e.g. 64KB, 1MB, 16GB or plain bytes)")


def _parse_duration(text: str) -> int:
    return _parse_with_unit(text, _DURATION_UNITS, "a duration (e.g. 30s, 5m, 1h, 1d or plain seconds)")


def _format_with_unit(value: int, units: dict[str, int], upper: bool) -> str:
    if value == 0:
        return "0"
    for unit, factor in sorted(units.items(), key=lambda item: -item[1]):
        if unit and value % factor == 0:
            return f"{value // factor}{unit.upper() if upper else unit}"
    return str(value)


_PARSERS = {
    Kind.INT: _parse_int,
    Kind.FLOAT: _parse_float,
    Kind.BOOL: _parse_bool,
    Kind.STR: str,
    Kind.BYTESIZE: _parse_bytesize,
    Kind.DURATION: _parse_duration,
}
_PYTHON_TYPES = {
    Kind.INT: int, Kind.FLOAT: (int, float), Kind.BOOL: bool, Kind.STR: str,
    Kind.ENUM: str, Kind.BYTESIZE: int, Kind.DURATION: int,
}


@dataclass(frozen=True, slots=True)
class Key:
    """One config key: its dotted name, type, default (as written in a file) and doc line."""

    name: str
    kind: Kind
    default_text: str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def default(self) -> Any:
        return self.parse(self.default_text)

    def parse(self, text: str) -> Any:
        """Turn a text value into a typed, range-checked one; ValueError says what is wrong."""
        if self.kind is Kind.ENUM:
            value = text.strip().lower()
            if value not in self.choices:
                raise ValueError(f"expected one of {', '.join(self.choices)}, got {text!r}")
            return value
        return self.check(_PARSERS[self.kind](text))

    def check(self, value: Any) -> Any:
        """Validate an already typed value (type, choices, range) and return it."""
        expected = _PYTHON_TYPES[self.kind]
        if not isinstance(value, expected) or (self.kind is not Kind.BOOL and isinstance(value, bool)):
            raise ValueError(f"expected a {self.kind.value}, got {value!r}")
        if self.kind is Kind.ENUM and value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {value!r}")
        if self.kind is Kind.FLOAT:
            value = float(value)
        self._check_range(value)
        return value

    def _check_range(self, value: Any) -> None:
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{self.format(value)} is out of range ({self.range_text()})")

    def range_text(self) -> str:
        low = "" if self.minimum is None else self.format(self.minimum)
        high = "" if self.maximum is None else self.format(self.maximum)
        if low and high:
            return f"{low}..{high}"
        return f">= {low}" if low else (f"<= {high}" if high else "")

    def format(self, value: Any) -> str:
        """The text form of a typed value, as it would be written in a config file."""
        if self.kind is Kind.BOOL:
            return "true" if value else "false"
        if self.kind is Kind.BYTESIZE:
            return _format_with_unit(int(value), _BYTE_UNITS, upper=True)
        if self.kind is Kind.DURATION:
            return _format_with_unit(int(value), _DURATION_UNITS, upper=False)
        if self.kind is Kind.FLOAT:
            return repr(float(value))
        if self.kind is Kind.STR and (value == "" or value != value.strip() or "#" in value):
            quote = "'" if '"' in value else '"'
            return quote + value + quote
        return str(value)

    def type_text(self) -> str:
        if self.kind is Kind.ENUM:
            return "one of " + ", ".join(self.choices)
        return f"{self.kind.value} {self.range_text()}".strip()
