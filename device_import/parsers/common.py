"""Reading values out of export files, with errors that say file, record, field and why.

Examples
--------
>>> fields = FieldReader("a.csv", "line 3", {"score": "4,5", "day": "2026-03-01"})
>>> fields.number("score", decimal_comma=True)
4.5
>>> fields.date("day")
datetime.date(2026, 3, 1)
>>> drug_key("Dexamethasone Sodium Phosphate")
'dexamethasone_sodium_phosphate'
"""

from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from device_import.plausibility import check_date
from device_import.problems import FileRejected, reject


def decode_text(data: bytes, file: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); any other encoding is refused."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise reject(
            file,
            "the file is not UTF-8 text (wrong encoding?)",
            record=f"line {line}, byte {error.start}",
            expected="UTF-8",
            found="bytes that are not UTF-8",
        ) from None


class DuplicateKey(ValueError):
    """A JSON object names one key twice (with :func:`unique_keys` as the object hook)."""

    def __init__(self, key: str) -> None:
        shown = key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", key) else "a key"
        super().__init__(f"the key {shown!r} appears twice in one object")
        self.key = shown


def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object hook that refuses a key given twice (``json`` keeps the last one).

    Examples
    --------
    >>> import json
    >>> json.loads('{"a": 1, "b": 2}', object_pairs_hook=unique_keys)
    {'a': 1, 'b': 2}
    >>> json.loads('{"name": "A", "name": "B"}', object_pairs_hook=unique_keys)
    Traceback (most recent call last):
    ...
    device_import.parsers.common.DuplicateKey: the key 'name' appears twice in one object
    """
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        raise DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return found


def duplicate_key(file: str, error: DuplicateKey, record: str) -> FileRejected:
    """The rejection of a JSON document with a key given twice (which value is meant?)."""
    return reject(
        file,
        "a JSON object gives the same key twice (which value is meant?): re-export the file",
        record=record,
        field=error.key,
        expected="each key once per object",
        found="the key twice",
    )


def drug_key(name: str) -> str:
    """The vocabulary key of a drug name as vendors and EHRs write it."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def zone(name: str, file: str, record: str) -> ZoneInfo:
    """An IANA time zone, or a clear error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise reject(
            file,
            "unknown time zone",
            record=record,
            field="time zone",
            expected="an IANA name such as America/Chicago",
            got=name,
        ) from None


class FieldReader:
    """Typed access to the named fields of one record, raising FileRejected on bad values."""

    def __init__(
        self, file: str, record: str, values: dict[str, object], *, lowercase: bool = False
    ) -> None:
        """``lowercase=True`` promises the keys are lower case already (saves a copy)."""
        self.file = file
        self.record = record
        self.values = values if lowercase else {key.lower(): v for key, v in values.items()}

    def _bad(
        self, name: str, expected: str, got: object, reason: str | None = None
    ) -> FileRejected:
        return reject(
            self.file,
            reason or f"bad value in field {name}",
            record=self.record,
            field=name,
            expected=expected,
            got=got,
        )

    def raw(self, name: str, *, required: bool = True) -> object:
        """The value as written; missing or empty raises when required."""
        value = self.values.get(name)
        if value is None:
            value = self.values.get(name.lower())
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            if required:
                raise self._bad(name, "a value", value, f"missing value in field {name}")
            return None
        return value

    def text(self, name: str, *, required: bool = True) -> str | None:
        """A text value."""
        value = self.raw(name, required=required)
        return None if value is None else str(value)

    def number(
        self,
        name: str,
        *,
        required: bool = True,
        decimal_comma: bool = False,
        low: float | None = None,
        high: float | None = None,
        unit: str = "",
    ) -> float | None:
        """A finite number, optionally within [low, high]."""
        value = self.raw(name, required=required)
        if value is None:
            return None
        text = str(value).replace(",", ".") if decimal_comma else str(value)
        try:
            number = float(text) if not isinstance(value, (int, float)) else float(value)
        except ValueError:
            hint = " (decimal comma?)" if "," in str(value) and not decimal_comma else ""
            raise self._bad(name, f"a number{hint}", value) from None
        if not math.isfinite(number):
            raise self._bad(name, "a finite number", value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise self._bad(
                name,
                f"between {low:g} and {high:g} {unit}".strip(),
                number,
                f"value out of range in field {name}",
            )
        return number

    def integer(self, name: str, *, required: bool = True) -> int | None:
        """A whole number."""
        number = self.number(name, required=required)
        if number is None:
            return None
        if number != int(number):
            raise self._bad(name, "a whole number", self.values.get(name))
        return int(number)

    def date(
        self, name: str, *, required: bool = True, today: dt.date | None = None
    ) -> dt.date | None:
        """An ISO date (YYYY-MM-DD); with ``today``, of an event in the operating window."""
        value = self.raw(name, required=required)
        if value is None:
            return None
        try:
            day = dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise self._bad(name, "a date YYYY-MM-DD", value) from None
        if today is not None:
            check_date(day, today, self.file, record=self.record, field=name)
        return day

    def time(self, name: str, *, required: bool = False) -> dt.time | None:
        """A time of day, HH:MM or HH:MM:SS."""
        value = self.raw(name, required=required)
        if value is None:
            return None
        try:
            return dt.time.fromisoformat(str(value))
        except ValueError:
            raise self._bad(name, "a time HH:MM", value) from None

    def yes_no(self, name: str, *, required: bool = False) -> bool | None:
        """Y/N, yes/no, true/false, 1/0."""
        value = self.raw(name, required=required)
        if value is None:
            return None
        lowered = str(value).lower()
        if lowered in ("y", "yes", "true", "1"):
            return True
        if lowered in ("n", "no", "false", "0"):
            return False
        raise self._bad(name, "Y or N", value)

    def choice(self, name: str, allowed: dict[str, str], *, required: bool = True) -> str | None:
        """A value mapped through ``allowed`` (case-insensitive keys)."""
        value = self.raw(name, required=required)
        if value is None:
            return None
        mapped = allowed.get(str(value).lower())
        if mapped is None:
            raise self._bad(name, "one of " + ", ".join(sorted(set(allowed))), value)
        return mapped
