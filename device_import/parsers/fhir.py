"""FHIR R4 exports: Bundles of any type and NDJSON bulk exports.

A file is FHIR when its first JSON object has a top-level ``resourceType``. A Bundle
(transaction, batch, collection, searchset, document, ...) is read entry by entry; an
NDJSON bulk export holds one resource per line. Files load in the order of
:func:`sniff`'s rank, so that later files can refer to resources imported from earlier
ones: Organization/Location, Patient, Condition/EpisodeOfCare, Encounter, the rest,
Bundles last. Parsing uses plain :mod:`json`; the records built from the resources are
validated by ``data_schemas.records``. How references resolve and which identifiers give
the natural keys: :mod:`device_import.parsers.fhir_graph`; what each resource type
becomes: :mod:`device_import.parsers.fhir_resources`. Spec:
``data_schemas/formats/fhir_r4.json``.

Examples
--------
>>> sniff(b'{"resourceType":"Patient","id":"p1"}\\n{"resourceType":"Patient"')
1
>>> sniff(b'{\\n  "id": "b1",\\n  "entry": [{"resource": {"resourceType": "Patient"}}],'
...       b'\\n  "resourceType": "Bundle"')
5
>>> sniff(b'{"format": "phoresys.session"}') is None
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from device_import.looks import looks_like
from device_import.parsed import ParseContext, ParsedFile
from device_import.parsers.common import DuplicateKey, decode_text, duplicate_key, unique_keys
from device_import.parsers.fhir_graph import FhirFile
from device_import.parsers.fhir_resources import MAPPERS
from device_import.parsers.fhir_values import RESOURCE_TYPE, Entry, obj, objs, text
from device_import.problems import FileRejected, reject

FORMAT = "fhir_r4"
RANKS: dict[str, int] = {
    "Organization": 0,
    "Location": 0,
    "Patient": 1,
    "Condition": 2,
    "EpisodeOfCare": 2,
    "Encounter": 3,
}
"""Load-order rank of an NDJSON file by its resource type; other types rank 4."""
OTHER_RANK = 4
BUNDLE_RANK = 5
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')


def _top_level_type(head: bytes) -> str | None:
    """The ``resourceType`` of the first JSON object in ``head`` (keys in any order)."""
    body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not body.startswith(b"{"):
        return None
    depth = 0
    key: bytes | None = None
    pending: bytes | None = None
    for found in _TOKEN.finditer(body):
        token = found.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth <= 0:
                return None
        elif token == b":":
            pending, key = (key if depth == 1 else None), None
        elif token == b",":
            key = pending = None
        elif pending == b'"resourceType"':
            try:
                value = json.loads(token)
            except ValueError:
                return None
            return value if isinstance(value, str) and RESOURCE_TYPE.match(value) else None
        else:
            key, pending = token, None
    return None


def sniff(head: bytes) -> int | None:
    """The load-order rank when ``head`` starts a FHIR file, else None."""
    resource_type = _top_level_type(head)
    if resource_type is None:
        return None
    if resource_type == "Bundle":
        return BUNDLE_RANK
    return RANKS.get(resource_type, OTHER_RANK)


def _documents(text_: str, file: str) -> tuple[list[tuple[str, Any]], bool]:
    """(position, JSON value) of the file's resources, and whether it is one document."""
    try:
        return [("resource", json.loads(text_, object_pairs_hook=unique_keys))], True
    except DuplicateKey as error:
        raise duplicate_key(file, error, "document") from None
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise reject(
                file,
                "not valid JSON",
                record=f"line {error.lineno}, column {error.colno}",
                expected="a FHIR resource or Bundle in JSON, or NDJSON",
                found=error.msg,
            ) from None
    except (ValueError, RecursionError) as error:
        raise reject(
            file, "not valid JSON", record="document", expected="JSON", found=type(error).__name__
        ) from None
    lines = []
    for number, line in enumerate(text_.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append((f"line {number}", json.loads(line, object_pairs_hook=unique_keys)))
        except DuplicateKey as error:
            raise duplicate_key(file, error, f"line {number}") from None
        except (ValueError, RecursionError) as error:
            raise reject(
                file,
                "an NDJSON line is not a JSON object (truncated or malformed line?)",
                record=f"line {number}",
                expected="one FHIR resource per line",
                found=getattr(error, "msg", type(error).__name__),
            ) from None
    return lines, False


def _entries(documents: list[tuple[str, Any]], file: str, parsed: ParsedFile) -> Iterator[Entry]:
    for position, document in documents:
        if not isinstance(document, dict) or not text(document.get("resourceType")):
            raise reject(
                file,
                "not a FHIR resource",
                record=position,
                expected='a JSON object with "resourceType"',
                got=document,
            )
        if document.get("resourceType") != "Bundle":
            yield Entry(position, document)
            continue
        bundle = position if position != "resource" else "Bundle"
        entries = document.get("entry", [])
        if not isinstance(entries, list):
            raise reject(
                file,
                "Bundle.entry is not a list",
                record=bundle,
                field="entry",
                expected="a JSON array",
                found=type(entries).__name__,
            )
        for index, item in enumerate(entries):
            item = obj(item)
            resource = item.get("resource")
            where = f"{bundle} entry {index}"
            if resource is None:
                parsed.skipped_resources["Bundle entry without resource"] += 1
                continue
            if not isinstance(resource, dict) or not text(resource.get("resourceType")):
                raise reject(
                    file,
                    "entry.resource is not a FHIR resource",
                    record=where,
                    field="resource",
                    expected='an object with "resourceType"',
                    got=resource,
                )
            yield Entry(where, resource, text(item.get("fullUrl")))


def parse(data: bytes, context: ParseContext) -> ParsedFile:
    """Parse a FHIR Bundle or NDJSON export into validated, de-identified records."""
    file = context.file
    content = decode_text(data, file)
    if not content.lstrip().startswith("{"):
        raise reject(
            file,
            "not a FHIR JSON file",
            record="start of file",
            expected='a JSON object with "resourceType"',
            found=looks_like(data),
        )
    parsed = ParsedFile(FORMAT, patient_fields=("birthDate", "name"))
    documents, single = _documents(content, file)
    is_bundle = single and obj(documents[0][1]).get("resourceType") == "Bundle"
    graph = FhirFile(context, parsed, list(_entries(documents, file, parsed)), is_bundle)
    entry: Entry | None = None
    try:
        for entry in graph.entries:
            mapper = MAPPERS.get(entry.type)
            if mapper is None:
                graph.skip(entry.kind if entry.kind != "resource" else "unknown resource type")
            else:
                mapper(graph, entry)
    except FileRejected:
        raise
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise reject(
            file,
            first["msg"],
            record=entry.where if entry else None,
            field=where or None,
            got=first.get("input"),
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeError, RecursionError) as error:
        raise reject(
            file,
            "malformed FHIR content",
            record=entry.where if entry else None,
            expected="FHIR R4 JSON",
            found=type(error).__name__,
        ) from None
    _summarize(graph, parsed)
    return parsed


def _summarize(graph: FhirFile, parsed: ParsedFile) -> None:
    if graph.untyped_visits:
        parsed.notes.append(
            f"{graph.untyped_visits} encounters have no recognized visit type "
            "(Encounter.type); imported as treatment visits"
        )
    outcomes = [entry for entry in graph.entries if entry.type == "OperationOutcome"]
    for entry in outcomes:
        issues = objs(entry.resource.get("issue"))
        severities = sorted({text(issue.get("severity")) or "?" for issue in issues})
        parsed.notes.append(
            f"{entry.where}: the server reported {len(issues)} issue(s) "
            f"(severity {', '.join(severities)}); the Bundle may be incomplete"
        )
    if not parsed.record_count() and not parsed.skipped_resources:
        parsed.notes.append("the file holds no resources")
