"""Deterministic identifiers derived from the seed (no uuid4, no wall clock).

Examples
--------
>>> bool(scramble(0, 1, 10**7) != scramble(1, 1, 10**7))
True
>>> det_uuid(0, "session", 5) == det_uuid(0, "session", 5)
True
"""

from __future__ import annotations

import hashlib

import numpy as np

_MULT = 7_919_317  # coprime with 10**k (odd, not a multiple of 5)


def scramble(index: int | np.ndarray, seed: int, modulus: int) -> int | np.ndarray:
    """A bijection of ``[0, modulus)`` that looks random, keyed by the seed.

    ``modulus`` must be a power of ten so that the multiplier is invertible.
    """
    offset = (seed * 104_729 + 12_345) % modulus
    return (np.asarray(index, dtype=np.int64) * _MULT + offset) % modulus


def det_uuid(seed: int, kind: str, index: int) -> str:
    """A UUID-formatted string derived from the seed, a kind and an index."""
    h = hashlib.sha1(f"{seed}:{kind}:{index}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def device_serial(prefix: str, seed: int, clinic: int, k: int) -> str:
    """A device serial such as ``KD4-23-04817``."""
    n = int(scramble(clinic * 100 + k, seed, 100_000))
    return f"{prefix}-{19 + (clinic + k) % 7:02d}-{n:05d}"
