"""The export formats the importers read, and how each is recognized from its content.

A format is detected from the first bytes of the file, never from its name. Treatment
records (EHR CSV, FHIR) load before device logs, so device sessions can be placed in
their clinic's time zone and linked to visits.

Examples
--------
>>> detect(b"not a known export", "x.txt") is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from device_import.parsed import ParseContext, ParsedFile
from device_import.parsers import dermapatch_log, ehr_csv, fhir, kathodyne_csv, phoresys_json

SNIFF_BYTES = 4096


def _never(_rank: int) -> bool:
    return False


def _always(_rank: int) -> bool:
    return True


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its name, how to recognize it, how to parse it."""

    name: str
    sniff: Callable[[bytes], int | None]
    """Returns the file's rank within the format (e.g. its EHR table's order) or None."""
    parse: Callable[[bytes, ParseContext], ParsedFile]
    is_device_log: bool
    places_devices: Callable[[int], bool] = _never
    """Whether a file of this rank may register devices or clinics (which device logs need
    to be placed in time and linked); device logs are parsed once all such files loaded."""


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat(
        "ehr_csv",
        ehr_csv.sniff,
        ehr_csv.parse,
        is_device_log=False,
        places_devices=ehr_csv.places_devices,
    ),
    # Device logs are the most numerous files and have cheap banners: test them before FHIR.
    ExportFormat("kathodyne_csv", kathodyne_csv.sniff, kathodyne_csv.parse, is_device_log=True),
    ExportFormat("phoresys_json", phoresys_json.sniff, phoresys_json.parse, is_device_log=True),
    ExportFormat("dermapatch_log", dermapatch_log.sniff, dermapatch_log.parse, is_device_log=True),
    ExportFormat("fhir_r4", fhir.sniff, fhir.parse, is_device_log=False, places_devices=_always),
)


@dataclass(frozen=True)
class Detected:
    """A file's format and its rank in the load order."""

    format: ExportFormat
    rank: tuple[int, int]

    @property
    def places_devices(self) -> bool:
        """Whether the file may register devices or clinics."""
        return self.format.places_devices(self.rank[1])


def detect(head: bytes, file_name: str) -> Detected | None:
    """The format of a file from its first bytes, or None when it is no known export."""
    for position, export_format in enumerate(FORMATS):
        rank = export_format.sniff(head[:SNIFF_BYTES])
        if rank is not None:
            return Detected(export_format, (position, rank))
    return None
