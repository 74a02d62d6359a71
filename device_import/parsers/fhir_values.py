"""JSON values of untrusted FHIR content, and one resource of a file with where it is.

FHIR content is untrusted: a field may hold any JSON value, so every read goes through
:func:`obj`, :func:`objs` or :func:`text`, which return an empty value for the wrong type.

Examples
--------
>>> obj([1]), objs([{"a": 1}, 2]), text("  x "), text(3)
({}, [{'a': 1}], 'x', None)
>>> Entry("line 3", {"resourceType": "Patient", "id": "Doe-Jane"}).where
'line 3 (Patient)'
>>> Entry("line 4", {"resourceType": "Bobby Nguyen"}).where
'line 4 (resource)'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
"""A well-formed FHIR resource type name."""


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (FHIR content is untrusted)."""
    return value if isinstance(value, dict) else {}


def objs(value: object) -> list[dict[str, Any]]:
    """The JSON objects of a JSON array (anything else is ignored)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: object) -> str | None:
    """A non-empty string, stripped, or None."""
    return value.strip() or None if isinstance(value, str) else None


def codings(concept: object) -> list[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept."""
    out = []
    for coding in objs(obj(concept).get("coding")):
        code = text(coding.get("code"))
        if code is not None:
            out.append((text(coding.get("system")) or "", code))
    return out


@dataclass(frozen=True)
class Entry:
    """One resource of the file and where it is (``entry 3`` or ``line 12``)."""

    position: str
    resource: dict[str, Any]
    full_url: str | None = None

    @property
    def type(self) -> str:
        """The resource type."""
        return str(self.resource.get("resourceType"))

    @property
    def id(self) -> str | None:
        """The resource id, if any."""
        return text(self.resource.get("id"))

    @property
    def where(self) -> str:
        """How an error names this resource."""
        return f"{self.position} ({self.kind})"

    @property
    def kind(self) -> str:
        """The resource type when it is a well-formed type name, else ``resource``."""
        return self.type if RESOURCE_TYPE.match(self.type) else "resource"
