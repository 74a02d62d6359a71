"""Append-only EHR CSV export, one folder per clinic (``ehr/<clinic_id>/<table>.csv``).

Examples
--------
>>> TABLES[:3]
('clinics', 'devices', 'patients')
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

TABLES = (
    "clinics",
    "devices",
    "patients",
    "episodes",
    "prescriptions",
    "visits",
    "interventions",
    "outcomes",
    "adverse_events",
)


class EhrCsvWriter:
    """Streams DataFrames (with a ``clinic`` index column) into per-clinic CSV files."""

    def __init__(self, out_dir: Path, clinic_ids: list[str]) -> None:
        self.out_dir = out_dir
        self.clinic_ids = clinic_ids
        self._handles: dict[tuple[int, str], IO[str]] = {}
        self.rows: dict[str, int] = dict.fromkeys(TABLES, 0)

    def _handle(self, clinic: int, table: str, columns: list[str]) -> IO[str]:
        key = (clinic, table)
        if key not in self._handles:
            path = self.out_dir / "ehr" / self.clinic_ids[clinic] / f"{table}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = path.open("w", encoding="utf-8", newline="")
            fh.write(",".join(columns) + "\n")
            self._handles[key] = fh
        return self._handles[key]

    def write(self, table: str, df: pd.DataFrame) -> None:
        """Append rows; ``df['clinic']`` selects the clinic folder.

        Every table carries the clinic's ``clinic_id`` as its first column, as a
        multi-site EHR export does, so a file is placed by its content, not its folder.
        """
        df = df.copy()
        if "clinic_id" not in df.columns:
            df.insert(0, "clinic_id", np.asarray(self.clinic_ids, dtype=object)[df["clinic"]])
        columns = [c for c in df.columns if c != "clinic"]
        for clinic in range(len(self.clinic_ids)):
            part = df.loc[df["clinic"].to_numpy() == clinic, columns]
            fh = self._handle(clinic, table, columns)
            if len(part):
                part.to_csv(fh, header=False, index=False, lineterminator="\n")
            self.rows[table] += len(part)

    def paths(self) -> list[Path]:
        """Files written so far, sorted."""
        return sorted(
            self.out_dir / "ehr" / self.clinic_ids[c] / f"{t}.csv" for c, t in self._handles
        )

    def close(self) -> None:
        """Close every file."""
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()
