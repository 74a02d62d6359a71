"""What a parser returns: validated records by table, packed samples by session, notes.

Examples
--------
>>> from data_schemas.records import ClinicRecord
>>> parsed = ParsedFile("ehr_csv")
>>> parsed.add("clinic", ClinicRecord(clinic_key="C1", name="North", timezone="UTC"))
>>> parsed.record_count()
1
>>> parsed.dump()
>>> parsed.rows["clinic"]
[{'clinic_key': 'C1', 'name': 'North', 'timezone': 'UTC'}]
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from data_schemas.records import Record, list_adapter
from device_import.privacy import Keyer


@dataclass(frozen=True)
class DeviceHome:
    """Where a registered device lives: its clinic and that clinic's time zone."""

    clinic_key: str
    timezone: str


@dataclass(frozen=True)
class ParseContext:
    """What a parser may know beyond the file: the site key and the device inventory."""

    file: str
    keyer: Keyer
    device_homes: dict[str, DeviceHome] = field(default_factory=dict)
    """Device serial hash → clinic and time zone, from the store and this batch."""
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    """The de-identification date: ages over 89 on this date are pooled as 90+."""
    clock: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    """The machine's date: no record is dated more than a day after it (plausibility)."""


@dataclass
class ParsedFile:
    """Records parsed from one file, grouped by the store table they become."""

    format: str
    records: dict[str, list[Record]] = field(default_factory=dict)
    rows: dict[str, list[dict]] = field(default_factory=dict)
    """Records already turned into plain rows by :meth:`dump`, by table."""
    traces: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    """Session key → (sample count, packed samples); packed in the parsing worker."""
    notes: list[str] = field(default_factory=list)
    skipped_resources: Counter[str] = field(default_factory=Counter)
    places: dict[str, list[str]] = field(default_factory=dict)
    """Where each record of a table is in the file (``line 7``, ``entry[3]``), in the order
    of the records, for the tables whose parser says so (a reason then names the place)."""
    patient_fields: tuple[str, str] = ("birth_date", "first_name, last_name")
    """The file's fields a patient's pseudonym is made of: the birth date, the name."""

    def add(self, table: str, record: Record, place: str | None = None) -> None:
        """Add one record bound for ``table`` (found at ``place`` in the file)."""
        self.records.setdefault(table, []).append(record)
        if place is not None:
            self.places.setdefault(table, []).append(place)

    def extend(self, table: str, records: list[Record], places: list[str] | None = None) -> None:
        """Add records bound for ``table`` (found at ``places`` in the file)."""
        self.records.setdefault(table, []).extend(records)
        if places is not None:
            self.places.setdefault(table, []).extend(places)

    def place(self, table: str, index: int) -> str:
        """Where the record ``index`` of ``table`` is in the file, as a reason names it.

        Examples
        --------
        >>> parsed = ParsedFile("ehr_csv", places={"patient": ["line 2", "line 3"]})
        >>> parsed.place("patient", 1), parsed.place("visit", 1)
        ('line 3', 'visit record 2')
        """
        known = self.places.get(table, [])
        return known[index] if index < len(known) else f"{table} record {index + 1}"

    def dump(self) -> None:
        """Turn the records into plain rows (sessions stay records, the session loader's).

        A worker process dumps what it parsed before sending it to the loading process:
        plain rows cross between processes about ten times faster than models.
        """
        for table in [name for name in self.records if name != "ionto_session"]:
            records = self.records.pop(table)
            self.rows.setdefault(table, []).extend(
                list_adapter(type(records[0])).dump_python(records)
            )

    def tables(self) -> set[str]:
        """The tables the file has records or rows for."""
        return set(self.records) | set(self.rows)

    def record_count(self) -> int:
        """How many records of all kinds the file holds."""
        return sum(map(len, self.records.values())) + sum(map(len, self.rows.values()))

    def sample_count(self) -> int:
        """How many device samples the file holds."""
        return sum(count for count, _ in self.traces.values())
