"""Setting a refused file aside: a private copy and its reason, never a followed link.

The copy keeps the file's own name after the first 12 hex digits of its SHA-256
(``3fa2b1c9d0e1_Lastname_Firstname.ndjson``): the quarantine folder is the site's own
disk, and the person who fixes the export needs to recognize the file. Both the copy and
its ``.reason.json`` are written with the source's permissions or stricter (at most
0600: owner read and write), and never through a symbolic link planted in the folder.
The reason names the file by its SHA-256 only.

Examples
--------
>>> import pathlib, tempfile
>>> from device_import.sources import SourceFile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.csv").write_text("x")
>>> source = SourceFile("a.csv", folder / "a.csv")
>>> copy = set_aside(folder / "q", source, b"x", "ab" * 32, {})
>>> copy.name, oct(copy.stat().st_mode & 0o777)
('abababababab_a.csv', '0o600')
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from device_import.sources import SourceFile

PRIVATE = 0o600
"""The loosest permissions a quarantine copy or reason gets (owner read and write)."""
NAME_BYTES = 200
"""The longest copy name kept (file systems allow 255 bytes, and ``.reason.json`` follows)."""


def copy_name(sha256: str, base_name: str) -> str:
    """The copy's name: hash prefix and the file's name, shortened to fit a file system.

    A long name keeps its start and its extension.

    Examples
    --------
    >>> name = copy_name("ab" * 32, "n" * 300 + ".csv")
    >>> len(name.encode()), name[:16], name[-6:]
    (200, 'abababababab_nnn', 'nn.csv')
    """
    name = f"{sha256[:12]}_{base_name}"
    if len(name.encode()) <= NAME_BYTES:
        return name
    dot = name.rfind(".")
    extension = name[dot:] if dot > 0 and len(name) - dot <= 16 else ""
    room = NAME_BYTES - len(extension.encode())
    stem = name.encode()[:room].decode(errors="ignore")
    return stem + extension


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new ``path`` with exactly ``mode``; a link in its place is refused."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(descriptor, mode)  # the umask may have removed bits; never adds any
        os.write(descriptor, data)
    finally:
        os.close(descriptor)


def set_aside(folder: Path, source: SourceFile, data: bytes, sha256: str, reason: dict) -> Path:
    """Write ``data``, the bytes of ``source``, into ``folder`` with its reason beside it.

    Returns the copy's path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(os.lstat(source.path).st_mode) & PRIVATE
    target = folder / copy_name(sha256, source.base_name)
    _write_private(target, data, mode)
    text = json.dumps(reason, indent=2) + "\n"
    _write_private(target.with_name(target.name + ".reason.json"), text.encode(), mode)
    return target
