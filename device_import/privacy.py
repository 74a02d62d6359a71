"""Pseudonyms and keyed hashes: nothing that identifies a person reaches the store.

Every identifier (a person, a medical record number, a device serial, a source-system
record id) is replaced by HMAC-SHA256 under the site key. The same person gets the same
pseudonym across files and sources because the pseudonym is computed from the normalized
name and birth date, not from a clinic's MRN (a patient may have two MRNs).

The site key comes from ``IONTO_SITE_KEY``, from the file named by ``IONTO_SITE_KEY_FILE``,
or from ``~/.config/ionto-analytics/site.key``; when none is configured and that file does
not exist, a demo key is created in it, outside the database, with a warning. A key must
carry 32 random bytes (64 hex digits or 44 base64 characters). The store keeps the key's
keyed fingerprint and refuses any other key (:class:`SiteKeyError`), never making a new one.

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

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import secrets
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, insert, select
from sqlmodel import SQLModel

from data_schemas import tables  # noqa: F401  (registers the site_key table)
from data_schemas.errors import InputError
from data_schemas.vocabulary import OLDEST_POOLED_AGE

KEY_ENV = "IONTO_SITE_KEY"
KEY_FILE_ENV = "IONTO_SITE_KEY_FILE"
DEFAULT_KEY_FILE = Path("~/.config/ionto-analytics/site.key")
MIN_KEY_BYTES = 32
"""A site key carries at least this many random bytes (written as hex or base64)."""
MIN_DISTINCT_KEY_BYTES = 16
"""Random 32 bytes have about 30 distinct values; fewer than 16 is a pattern, not a key."""
FINGERPRINT_LABEL = b"ionto-site-key-fingerprint"
MAKE_KEY = 'python -c "import secrets; print(secrets.token_hex(32))" > site.key'


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

    def file_name(self, name: str) -> str:
        """The keyed hash of a file's base name (a name may hold a patient's name)."""
        return self.key("file_name", name)


class SiteKeyError(InputError):
    """The site key is missing, too weak, or not the key the store's pseudonyms were made with.

    Never answered with a new key: a new key would give every known patient a second
    pseudonym. The ``ionto`` command exits with status 2.
    """


def _key_strength(text: str) -> int:
    """Random bytes a text key carries: hex and base64 are decoded, other text counts 0."""
    compact = "".join(text.split())
    try:
        raw = bytes.fromhex(compact)
    except ValueError:
        try:
            raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except binascii.Error:
            return 0
    return len(raw) if len(set(raw)) >= MIN_DISTINCT_KEY_BYTES else 0


def checked_key(text: str, where: str) -> bytes:
    """A text site key, refused unless it is 32 or more random bytes in hex or base64.

    Examples
    --------
    >>> len(checked_key(secrets.token_hex(32), "test"))
    64
    >>> try:
    ...     checked_key("1", "IONTO_SITE_KEY")
    ... except SiteKeyError as error:
    ...     print(str(error).split(":")[0])
    the site key in IONTO_SITE_KEY is too weak
    """
    stripped = text.strip()
    strength = _key_strength(stripped)
    if strength < MIN_KEY_BYTES:
        got = f"{len(stripped)} characters, {strength} random bytes" if stripped else "no key"
        raise SiteKeyError(
            f"the site key in {where} is too weak: expected at least {MIN_KEY_BYTES} random "
            f"bytes written as hex or base64, got {got}. Fix: if this store already holds "
            "pseudonyms, restore the key they were made with; for a new store make one "
            f"with: {MAKE_KEY}"
        )
    return stripped.encode("utf-8")


def load_site_key(*, environ: dict[str, str] | None = None) -> bytes:
    """The site key from the environment or its file; a demo key only if none is configured.

    ``IONTO_SITE_KEY`` wins; else the file named by ``IONTO_SITE_KEY_FILE``, which must
    exist; else ``~/.config/ionto-analytics/site.key``, created with a demo key (and a
    :class:`DemoKeyWarning`) when it does not exist. Every key is checked by
    :func:`checked_key`.
    """
    env = os.environ if environ is None else environ
    if KEY_ENV in env:
        return checked_key(env[KEY_ENV], KEY_ENV)
    configured = env.get(KEY_FILE_ENV)
    path = Path(configured or DEFAULT_KEY_FILE).expanduser()
    if path.exists():
        return checked_key(_read_key_file(path), f"the key file {path}")
    if configured:
        raise SiteKeyError(
            f"the site key file {path} named by {KEY_FILE_ENV} does not exist; a new key "
            "would give every patient already in the store a second pseudonym, so none is "
            f"made. Fix: restore the key file from your backup, or point {KEY_FILE_ENV} at it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(MIN_KEY_BYTES) + "\n", encoding="utf-8")
    path.chmod(0o600)
    warnings.warn(
        f"created a DEMO site key at {path}, for the demo only: pseudonyms are only as "
        f"private as this file, which is kept outside the database, and a store made with "
        f"it refuses any other key. For real patient data set {KEY_ENV} or {KEY_FILE_ENV} "
        "to a key your site controls and keeps a backup of.",
        DemoKeyWarning,
        stacklevel=2,
    )
    return checked_key(_read_key_file(path), f"the key file {path}")


def _read_key_file(path: Path) -> str:
    """The text in ``path``; a folder, an unreadable or a non-UTF-8 file is an InputError."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise InputError(
            f"the site key file {path} cannot be read ({reason}); expected a readable UTF-8 "
            f"text file: fix it, or point {KEY_FILE_ENV} at another, or set {KEY_ENV}"
        ) from None


def fingerprint(site_key: bytes) -> str:
    """The keyed fingerprint of a site key: recognizes the key, reveals nothing of it.

    Examples
    --------
    >>> fingerprint(b"a") == fingerprint(b"a") != fingerprint(b"b")
    True
    """
    return hmac.new(site_key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def check_site_key(connection: Connection, keyer: Keyer) -> None:
    """Refuse a key the store's pseudonyms were not made with; record it on first use.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://")
    >>> store.upgrade(engine)
    >>> with engine.begin() as connection:
    ...     check_site_key(connection, Keyer(b"first key"))
    >>> with engine.begin() as connection:
    ...     check_site_key(connection, Keyer(b"other key"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    device_import.privacy.SiteKeyError: this store's pseudonyms were made with another ...
    """
    table = SQLModel.metadata.tables["site_key"]
    stored = connection.execute(select(table.c.fingerprint)).scalars().all()
    mine = fingerprint(keyer.site_key)
    if not stored:
        connection.execute(insert(table).values(fingerprint=mine, recorded_at_utc=_utc_now()))
        return
    if mine not in stored:
        raise SiteKeyError(
            "this store's pseudonyms were made with another site key (the key's fingerprint "
            f"{mine[:12]}… is not the store's {stored[0][:12]}…); importing under this key "
            f"would give every known patient a second pseudonym. Fix: set {KEY_ENV} or "
            f"{KEY_FILE_ENV} to the key this store was made with (see README, Privacy: key "
            "rotation, to change keys)"
        )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def earliest_day(birth_date: str) -> dt.date:
    """The first day a full or partial date (``1961``, ``1961-05``) can stand for.

    Examples
    --------
    >>> earliest_day("1961"), earliest_day("1961-05"), earliest_day("1961-05-06")
    (datetime.date(1961, 1, 1), datetime.date(1961, 5, 1), datetime.date(1961, 5, 6))
    """
    padded = birth_date + "-01-01"[len(birth_date) - 4 :] if len(birth_date) < 10 else birth_date
    return dt.date.fromisoformat(padded)


def age_fields(birth_date: str, on: str | dt.date) -> tuple[int | None, bool, int]:
    """Birth year, whether aged 90+, and age in years on a date (90 for 90+).

    Only the year of birth is kept; for ages over 89 not even that. A partial birth date
    (``1961``) is taken at its earliest day, so an age is never understated (the 90+
    pooling errs on the side of pooling).
    """
    born = earliest_day(birth_date)
    day = on if isinstance(on, dt.date) else dt.date.fromisoformat(on)
    age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    if age >= OLDEST_POOLED_AGE:
        return None, True, OLDEST_POOLED_AGE
    return born.year, False, age
