"""Named random streams: one per purpose, spawned from the run's seed and the chunk.

Every random draw of an emulation reads its own stream, so adding a draw to one purpose
(say a new field in the visit records) leaves every other purpose's numbers unchanged.
Chunk ``c`` of a run seeded ``seed`` owns the table
``numpy.random.SeedSequence([seed, c]).spawn(len(PURPOSES))``: a purpose's position in
:data:`PURPOSES` is its child. Purposes drawn once per run (the device fleet) use chunk 0.

Identifiers are not drawn: they scramble an index with an integer key
(:func:`emulator.ids.scramble`), one key per kind of identifier from :func:`id_keys`, taken
from the identifier children of chunk 0 (the same in every chunk, never used as generators).

Examples
--------
>>> g = streams(seed=7, chunk=0)
>>> sorted(g) == sorted(DRAWS)
True
>>> a = float(streams(7, 0)["population"].random())
>>> a == float(streams(7, 0)["population"].random())
True
>>> a == float(streams(7, 1)["population"].random())
False
>>> id_keys(7)["mrn"] != id_keys(7)["encounter_id"]
True
"""

from __future__ import annotations

import numpy as np

DRAWS: tuple[str, ...] = (
    # The first ten keep the children the chunked engine spawned before this table existed,
    # so the clinical draws (population to device choice) keep their numbers.
    "population",  # clinic, condition, demographics, identities and baselines of episodes
    "assignment",  # planned and received arm
    "care_plan",  # visits a week, plan length, device kind, potential ionto sessions
    "session_plans",  # current, impedance, electrode and end reason of each potential session
    "visit_calendar",  # visit dates and start times
    "outcomes",  # observed instrument scores
    "dropout",  # who drops out, when, and who answers the follow-up
    "truth",  # noise of the potential-outcome curves in the ground truth
    "prescriptions",  # referral and prescription dates, prescribed volume
    "device_pick",  # which of the clinic's devices ran each session
    "episode_records",  # prescriber and other episode-level EHR details
    "visit_records",  # therapist, minutes, QuickDASH items, adverse events
    "session_clock",  # minutes between visit start and session start
    "documentation",  # encounter id entered on the device, channel used
    "signals",  # current and impedance samples of each session
    "devices",  # clock skew, firmware and service date of each device (chunk 0 only)
)
"""Purposes drawn from a ``numpy.random.Generator`` (one stream each, per chunk)."""

IDENTIFIERS: tuple[str, ...] = (
    "mrn",
    "encounter_id",
    "kathodyne_session_id",
    "dermapatch_session_id",
    "phoresys_session_id",
)
"""Kinds of identifier scrambled with a key of their own."""

PURPOSES: tuple[str, ...] = DRAWS + IDENTIFIERS
"""The table of purposes; a purpose's position is its child in a chunk's spawn."""


def _table(seed: int, chunk: int) -> dict[str, np.random.SeedSequence]:
    """Purpose -> its child of ``SeedSequence([seed, chunk])``."""
    children = np.random.SeedSequence([seed, chunk]).spawn(len(PURPOSES))
    return dict(zip(PURPOSES, children, strict=True))


def streams(seed: int, chunk: int = 0) -> dict[str, np.random.Generator]:
    """One generator per purpose in :data:`DRAWS` for one chunk of episodes.

    Parameters
    ----------
    seed : int
        The run's seed (a non-negative integer).
    chunk : int
        Index of the chunk of episodes (purposes drawn once per run use chunk 0).

    Returns
    -------
    dict of str to numpy.random.Generator
        Purpose -> the generator of that purpose's stream for this chunk.

    Examples
    --------
    >>> import numpy as np
    >>> g = streams(3, chunk=2)["outcomes"]
    >>> child = np.random.SeedSequence([3, 2]).spawn(len(PURPOSES))[PURPOSES.index("outcomes")]
    >>> bool(g.random() == np.random.default_rng(child).random())
    True
    """
    table = _table(seed, chunk)
    return {p: np.random.default_rng(table[p]) for p in DRAWS}


def id_keys(seed: int) -> dict[str, int]:
    """One integer key per kind of identifier in :data:`IDENTIFIERS`.

    Parameters
    ----------
    seed : int
        The run's seed (a non-negative integer).

    Returns
    -------
    dict of str to int
        Identifier kind -> a 32-bit key from that purpose's ``SeedSequence``.

    Examples
    --------
    >>> keys = id_keys(0)
    >>> sorted(keys) == sorted(IDENTIFIERS)
    True
    >>> all(0 <= k < 2**32 for k in keys.values()), keys == id_keys(0)
    (True, True)
    """
    table = _table(seed, 0)
    return {p: int(table[p].generate_state(1)[0]) for p in IDENTIFIERS}
