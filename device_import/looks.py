"""What an unknown file looks like, said without quoting a byte of it.

An unknown file may be anything that was in the export folder (a letter to a patient, a
copy of ``/etc/passwd``), so its problem says only its size and its kind.

Examples
--------
>>> looks_like(b"\\xff\\xfeh\\x00i\\x00")
'6 bytes of UTF-16 text'
>>> looks_like(b"PK\\x03\\x04rest", in_zip=True)
'8 bytes: a zip inside a zip'
>>> looks_like("Name,Phone\\nBobby,555\\n".encode())
'21 bytes of UTF-8 text, 2 lines, the first with 2 comma-separated fields'
>>> unknown_format("a.csv", looks_like(b"\\xff\\xfeh\\x00i\\x00")).reason
'UTF-16 text: re-export as UTF-8'
"""

from __future__ import annotations

from device_import.problems import Problem

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x7fELF", "a program (ELF)"),
)
"""Leading bytes of common non-export files, and what to call them."""

LOOK_BYTES = 4096
"""How much of the file is looked at to describe it."""


def _text_kind(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text"
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not just a character cut at the end of the look
            return None
        text = head[: error.start].decode("utf-8-sig")
    if any(ord(char) < 32 and char not in "\t\r\n" for char in text):
        return None
    lines = text.splitlines()
    first = lines[0] if lines else ""
    shape = f", {len(lines)} lines" if len(lines) > 1 else ""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return f"UTF-8 text{shape}, starting like JSON"
    if first.count(",") or first.count(";"):
        separator = "," if first.count(",") >= first.count(";") else ";"
        name = "comma" if separator == "," else "semicolon"
        fields = first.count(separator) + 1
        return f"UTF-8 text{shape}, the first with {fields} {name}-separated fields"
    return f"UTF-8 text{shape}"


def looks_like(data: bytes, *, in_zip: bool = False) -> str:
    """The size and kind of a file's bytes: text, a known binary kind, or binary."""
    if not data:
        return "an empty file"
    head = data[:LOOK_BYTES]
    size = f"{len(data):,} bytes"
    for magic, kind in MAGIC:
        if head.startswith(magic):
            if in_zip and magic == b"PK\x03\x04":
                kind = "a zip inside a zip"
            return f"{size}: {kind}"
    text = _text_kind(head)
    if text is not None:
        return f"{size} of {text}"
    return f"{size} of binary data"


ADVICE: tuple[tuple[str, str], ...] = (
    ("a zip inside a zip", "a zip inside a zip: unpack it first, then import its files"),
    ("UTF-16 text", "UTF-16 text: re-export as UTF-8"),
    (
        "semicolon-separated",
        "semicolon-separated text: the EHR export is comma-separated; re-export it with "
        "commas (DermaPatch logs start with their banner line)",
    ),
    ("an empty file", "unknown format: the file is empty; export it again"),
)
"""What an IT person can do about an unknown file, by what it looks like."""
UNKNOWN = (
    "unknown format: not a device export or treatment record this toolkit reads; remove it "
    "from the export folder or export it in a known format"
)


def unknown_format(file: str, looks: str) -> Problem:
    """The problem of a file of no known format, with advice by what it looks like."""
    reason = next((advice for kind, advice in ADVICE if kind in looks), UNKNOWN)
    return Problem(
        file,
        "start of file",
        None,
        "a format listed in data_schemas/formats/README.md",
        looks,
        reason,
    )
