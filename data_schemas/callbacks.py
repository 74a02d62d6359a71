"""Callback types that the stages accept from the application layer.

Examples
--------
>>> from data_schemas.callbacks import ProgressCallback
>>> report: ProgressCallback = lambda done, total: None
>>> report(1, 2)
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressCallback"]

ProgressCallback = Callable[[int, int], None]
"""Called with (done, total) as work advances."""
