"""Pseudonyms and keyed hashes: nothing that identifies a person reaches the store.

Every identifier (a person, a medical record number, a device serial, a source-system
record id) is replaced by HMAC-SHA256 under the site key. The same person gets the same
pseudonym across files and sources because the pseudonym is computed from the normalized
name and birth date, not from a clinic's MRN (a patient may have two MRNs).

The site key comes from ``IONTO_SITE_KEY``, from the file named by ``IONTO_SITE_KEY_FILE``,
or from ``~/.config/ionto-analytics/site.key``; when none exists a demo key is created in
that file, outside the database, with a warning.

Examples
--------
>>> keyer = Keyer(b"test-key")
>>> keyer.person("Ann", "O'Neil", "1970-05-04") == keyer.person("ANN", "O Neil", "1970-05-04")
True
>>> len(keyer.key("visit", "C01", "V-1"))
64
>>> age_fields("1930-02-01", "2026-03-01")
(None, True, 90)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from data_schemas.errors import InputError
from data_schemas.vocabulary import OLDEST_POOLED_AGE

KEY_ENV = "IONTO_SITE_KEY"
KEY_FILE_ENV = "IONTO_SITE_KEY_FILE"
DEFAULT_KEY_FILE = Path("~/.config/ionto-analytics/site.key")


class DemoKeyWarning(UserWarning):
    """A demo site key was created; real data needs a key the site controls."""


def _normalized(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed.casefold() if char.isalnum())


@dataclass(frozen=True)
class Keyer:
    """Keyed hashes under one site key.

    Hashes are remembered (an export repeats the same episode id on every outcome row),
    so each distinct identifier is hashed once per process.
    """

    site_key: bytes
    _seen: dict[tuple[str, ...], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def key(self, kind: str, *parts: str) -> str:
        """A keyed hash of a source identifier, namespaced by ``kind``."""
        as_given = (kind, *parts)
        known = self._seen.get(as_given)
        if known is None:
            text = "\x1f".join((kind, *(str(part).strip() for part in parts))).encode("utf-8")
            known = hmac.new(self.site_key, text, hashlib.sha256).hexdigest()
            self._seen[as_given] = known
        return known

    def person(self, given_name: str, family_name: str, birth_date: str) -> str:
        """The pseudonym of a person: same name and birth date, same pseudonym."""
        return self.key("person", _normalized(given_name), _normalized(family_name), birth_date)

    def serial(self, serial: str) -> str:
        """The keyed hash of a device serial number (a Safe Harbor identifier)."""
        return self.key("device", serial.strip().upper())


def load_site_key(*, environ: dict[str, str] | None = None) -> bytes:
    """The site key from the environment or its file, creating a demo key if none exists."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return env[KEY_ENV].encode("utf-8")
    path = Path(env.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE).expanduser()
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    path.chmod(0o600)
    warnings.warn(
        f"created a demo site key at {path}: pseudonyms are only as private as this file, "
        f"which is kept outside the database. For real patient data set {KEY_ENV} or "
        f"{KEY_FILE_ENV} to a key your site controls.",
        DemoKeyWarning,
        stacklevel=2,
    )
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    """The key in ``path``; a folder, an unreadable or a non-UTF-8 file is an InputError."""
    try:
        return path.read_text(encoding="utf-8").strip().encode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise InputError(
            f"the site key file {path} cannot be read ({reason}); expected a readable UTF-8 "
            f"text file: fix it, or point {KEY_FILE_ENV} at another, or set {KEY_ENV}"
        ) from None


def age_fields(birth_date: str, on: str | dt.date) -> tuple[int | None, bool, int]:
    """Birth year, whether aged 90+, and age in years on a date (90 for 90+).

    Only the year of birth is kept; for ages over 89 not even that.
    """
    born = dt.date.fromisoformat(birth_date)
    day = on if isinstance(on, dt.date) else dt.date.fromisoformat(on)
    age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    if age >= OLDEST_POOLED_AGE:
        return None, True, OLDEST_POOLED_AGE
    return born.year, False, age
