"""Declarative cohorts with an attrition table: nothing is dropped silently.

A :class:`Cohort` says who is analysed (condition or family, instrument, arms, intake
window, clinics, minimum visits, per-protocol rules, intention-to-treat); :meth:`Cohort.build`
applies the steps in a fixed order to the frames of :mod:`ionto_analytics.loaders` and returns
a :class:`CohortResult` whose ``attrition`` table has one row per step (``step``,
``excluded``, ``remaining``, ``reason``); ``excluded`` always adds up to the difference
between the first and the last ``remaining``.

Steps, in order: all episodes → condition → intake window → clinics → arm recorded → arm
compared → minimum visits → instrument scored → (per protocol) device sessions linked,
no wrong-polarity session, delivered ≥ ``min_dose_fraction`` of the prescribed dose, no
iontophoresis session in a non-iontophoresis arm.

Examples
--------
>>> import pandas as pd
>>> episodes = pd.DataFrame({
...     "episode_id": ["e1", "e2", "e3", "e4"], "patient_id": ["p1", "p2", "p3", "p4"],
...     "clinic_id": "c1", "condition": ["lateral_epicondylitis"] * 3 + ["plantar_fasciitis"],
...     "arm": ["ionto+exercise", "exercise", None, "exercise"],
...     "planned_arm": ["ionto+exercise", "exercise", "exercise", "exercise"],
...     "age_years": 50.0, "sex": "female", "symptom_duration_weeks": 8.0,
...     "start_date": pd.Timestamp("2025-03-03"), "end_date": pd.NaT, "n_visits": 8})
>>> outcomes = pd.DataFrame({"episode_id": ["e1", "e2", "e3", "e4"], "instrument": "prtee",
...                          "score": 50.0, "days_from_intake": 0, "visit_id": None})
>>> result = Cohort("epicondylitis", "prtee", ("ionto+exercise", "exercise")).build(
...     episodes, outcomes)
>>> result.attrition[["step", "excluded", "remaining"]].values.tolist()[:4]
[['all episodes', 0, 4], ['condition', 1, 3], ['intake window', 0, 3], ['clinics', 0, 3]]
>>> len(result.episodes), result.excluded
(2, {'other_condition': 1, 'no_arm': 1})
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from data_schemas.frames import FRAME_COLUMNS, require_columns
from data_schemas.vocabulary import ARMS, conditions_in
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument
from ionto_analytics.jsonable import jsonable

__all__ = ["ATTRITION_COLUMNS", "Cohort", "CohortResult"]

ATTRITION_COLUMNS: tuple[str, ...] = ("step", "key", "excluded", "remaining", "reason")
"""Columns of :attr:`CohortResult.attrition` (``key`` is the machine-readable reason)."""


def _date(value: dt.date | str | pd.Timestamp | None, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except (TypeError, ValueError) as error:
        raise InputError(f"Cohort {name}: expected a date, got {value!r}") from error


_LOAD_HINT = "; expected the frame from ionto_analytics.loaders"


@dataclass(frozen=True)
class Cohort:
    """Who is analysed, declared once and applied by :meth:`build`.

    Parameters
    ----------
    condition : str
        A condition key or a family key (``"epicondylitis"``).
    instrument : str
        Instrument key; episodes with no score on it are excluded.
    arms : tuple of str
        Arms kept (the compared arms; first − second in comparisons).
    start, end : date, optional
        Intake (``start_date``) window, inclusive.
    clinics : tuple of str, optional
        Clinic keys kept (None: all).
    min_visits : int
        Minimum number of visits (``n_visits``).
    per_protocol : bool
        Apply the device-log rules: iontophoresis-arm episodes need linked sessions, no
        wrong-polarity session (when ``exclude_wrong_polarity``) and delivered ≥
        ``min_dose_fraction`` × prescribed dose summed over their sessions; episodes of
        other arms must have no iontophoresis session logged.
    min_dose_fraction : float
        Share of the prescribed dose that must be delivered (per protocol).
    exclude_wrong_polarity : bool
        Per protocol: exclude episodes with a wrong-polarity session.
    intention_to_treat : bool
        Use ``planned_arm`` as the arm (the delivered arm is ignored). Cannot be combined
        with ``per_protocol``.

    Examples
    --------
    >>> Cohort("tendinopathy", "visa_a", ("ionto+exercise", "exercise")).arms
    ('ionto+exercise', 'exercise')
    >>> Cohort("knee", "nprs", ("exercise",))
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: Cohort condition: unknown condition 'knee'; ...
    """

    condition: str
    instrument: str
    arms: tuple[str, ...]
    start: dt.date | None = None
    end: dt.date | None = None
    clinics: tuple[str, ...] | None = None
    min_visits: int = 0
    per_protocol: bool = False
    min_dose_fraction: float = 0.8
    exclude_wrong_polarity: bool = True
    intention_to_treat: bool = False

    def __post_init__(self) -> None:
        try:
            conditions_in(self.condition)
        except ValueError as error:
            raise InputError(f"Cohort condition: {error}") from None
        get_instrument(self.instrument)
        arms = (self.arms,) if isinstance(self.arms, str) else tuple(self.arms)
        object.__setattr__(self, "arms", arms)
        bad = [a for a in arms if a not in ARMS]
        if not arms or bad or len(set(arms)) != len(arms):
            raise InputError(
                f"Cohort arms: expected distinct arm keys from {list(ARMS)}, got {list(arms)}"
            )
        if self.clinics is not None:
            object.__setattr__(self, "clinics", tuple(self.clinics))
        start, end = _date(self.start, "start"), _date(self.end, "end")
        if start is not None and end is not None and end < start:
            raise InputError(f"Cohort: end {self.end} is before start {self.start}; swap them")
        if self.min_visits < 0:
            raise InputError(f"Cohort min_visits must be ≥ 0, got {self.min_visits}")
        if not 0.0 <= self.min_dose_fraction <= 1.0:
            raise InputError(
                f"Cohort min_dose_fraction must be in [0, 1], got {self.min_dose_fraction}"
            )
        if self.per_protocol and self.intention_to_treat:
            raise InputError(
                "Cohort: per_protocol and intention_to_treat exclude each other; choose one"
            )

    def build(
        self,
        episodes: pd.DataFrame,
        outcomes: pd.DataFrame,
        sessions: pd.DataFrame | None = None,
    ) -> CohortResult:
        """Apply the steps in order; the input frames are not modified.

        Parameters
        ----------
        episodes, outcomes : DataFrame
            Episode and outcome frames (:func:`ionto_analytics.loaders.load_episodes`,
            :func:`~ionto_analytics.loaders.load_outcomes`).
        sessions : DataFrame, optional
            Session frame (:func:`~ionto_analytics.loaders.load_sessions`); needed for
            ``per_protocol`` (None counts as no session at all).

        Returns
        -------
        CohortResult
        """
        require_columns(
            episodes,
            ("episode_id", "clinic_id", "condition", "arm", "start_date", "n_visits"),
            "episodes",
            hint=_LOAD_HINT,
        )
        require_columns(outcomes, ("episode_id", "instrument"), "outcomes", hint=_LOAD_HINT)
        if self.intention_to_treat:
            require_columns(episodes, ("planned_arm",), "episodes", hint=_LOAD_HINT)
        if sessions is None:
            sessions = pd.DataFrame({c: pd.Series(dtype=object) for c in FRAME_COLUMNS["session"]})
        if self.per_protocol:
            require_columns(
                sessions,
                ("episode_id", "prescribed_dose_mA_min", "delivered_dose_mA_min", "wrong_polarity"),
                "sessions",
                hint=_LOAD_HINT,
            )
        ep = episodes.copy()
        if self.intention_to_treat:
            ep["arm"] = ep["planned_arm"]
        steps = _Steps(ep)
        conds = conditions_in(self.condition)
        steps.drop(
            lambda e: ~e["condition"].isin(conds),
            "condition",
            "other_condition",
            f"condition not {self.condition}",
        )
        start, end = _date(self.start, "start"), _date(self.end, "end")

        def outside(e: pd.DataFrame) -> np.ndarray:
            dates = pd.to_datetime(e["start_date"])
            m = np.zeros(len(e), dtype=bool)
            if start is not None:
                m |= (dates < start).to_numpy()
            if end is not None:
                m |= (dates > end).to_numpy()
            return m

        lo = "…" if start is None else str(start.date())
        hi = "…" if end is None else str(end.date())
        steps.drop(
            outside, "intake window", "outside_intake_window", f"intake outside {lo} to {hi}"
        )
        clinics = self.clinics
        steps.drop(
            lambda e: np.zeros(len(e), bool) if clinics is None else ~e["clinic_id"].isin(clinics),
            "clinics",
            "other_clinic",
            "all clinics kept" if clinics is None else f"clinic not in {list(clinics)}",
        )
        which = "planned arm" if self.intention_to_treat else "delivered arm"
        steps.drop(lambda e: e["arm"].isna(), "arm recorded", "no_arm", f"no {which} recorded")
        steps.drop(
            lambda e: ~e["arm"].isin(self.arms),
            "arm compared",
            "other_arm",
            f"{which} not one of {list(self.arms)}",
        )
        steps.drop(
            lambda e: e["n_visits"].to_numpy() < self.min_visits,
            "minimum visits",
            "too_few_visits",
            f"fewer than {self.min_visits} visits",
        )
        scored = outcomes.loc[outcomes["instrument"] == self.instrument, "episode_id"]
        steps.drop(
            lambda e: ~e["episode_id"].isin(scored),
            "instrument scored",
            "no_instrument_score",
            f"no {self.instrument} score recorded",
        )
        if self.per_protocol:
            self._per_protocol(steps, sessions)
        ep = steps.ep
        kept = ep["episode_id"]
        out = outcomes[
            outcomes["episode_id"].isin(kept) & (outcomes["instrument"] == self.instrument)
        ].reset_index(drop=True)
        linked = sessions["episode_id"].notna() & sessions["episode_id"].isin(kept)
        return CohortResult(
            cohort=self,
            episodes=ep.reset_index(drop=True),
            outcomes=out,
            sessions=sessions[linked.to_numpy()].reset_index(drop=True),
            attrition=pd.DataFrame(steps.rows, columns=list(ATTRITION_COLUMNS)),
        )

    def _per_protocol(self, steps: _Steps, sessions: pd.DataFrame) -> None:
        s = sessions[sessions["episode_id"].notna()]
        by = s.groupby("episode_id")
        delivered = (
            s["delivered_dose_mA_min"].astype(float).where(s["prescribed_dose_mA_min"].notna())
        )
        per_ep = pd.DataFrame(
            {
                "n": by.size(),
                "wrong": by["wrong_polarity"].any(),
                "prescribed": by["prescribed_dose_mA_min"].sum(min_count=1),
                "delivered": delivered.groupby(s["episode_id"]).sum(min_count=1),
            }
        )

        def col(e: pd.DataFrame, name: str) -> np.ndarray:
            return per_ep[name].reindex(e["episode_id"]).to_numpy(dtype=float)

        def ionto(e: pd.DataFrame) -> np.ndarray:
            return e["arm"].astype(str).str.contains("ionto").to_numpy()

        steps.drop(
            lambda e: ionto(e) & (np.nan_to_num(col(e, "n")) == 0),
            "per protocol: sessions linked",
            "pp_no_session",
            "iontophoresis arm without any device session linked",
        )
        if self.exclude_wrong_polarity:
            steps.drop(
                lambda e: ionto(e) & (np.nan_to_num(col(e, "wrong")) > 0),
                "per protocol: polarity",
                "pp_wrong_polarity",
                "a session ran with the wrong electrode polarity",
            )
        steps.drop(
            lambda e: ionto(e) & np.isnan(col(e, "prescribed")),
            "per protocol: prescribed dose",
            "pp_no_prescribed_dose",
            "no session records the prescribed dose",
        )

        def low(e: pd.DataFrame) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = col(e, "delivered") / col(e, "prescribed")
            return ionto(e) & ~(frac >= self.min_dose_fraction - 1e-12)

        steps.drop(
            low,
            "per protocol: dose delivered",
            "pp_low_dose",
            f"delivered < {self.min_dose_fraction:.0%} of the prescribed dose",
        )
        steps.drop(
            lambda e: ~ionto(e) & (np.nan_to_num(col(e, "n")) > 0),
            "per protocol: no ionto in control",
            "pp_ionto_in_control",
            "iontophoresis session logged in an arm without iontophoresis",
        )


class _Steps:
    """The episodes still in, and the attrition rows so far."""

    def __init__(self, ep: pd.DataFrame) -> None:
        self.ep = ep
        self.rows: list[dict[str, Any]] = [
            {"step": "all episodes", "key": "", "excluded": 0, "remaining": len(ep), "reason": ""}
        ]

    def drop(
        self,
        mask: Callable[[pd.DataFrame], np.ndarray | pd.Series],
        step: str,
        key: str,
        reason: str,
    ) -> None:
        m = np.asarray(mask(self.ep), dtype=bool)
        self.ep = self.ep[~m]
        self.rows.append(
            {
                "step": step,
                "key": key,
                "excluded": int(m.sum()),
                "remaining": len(self.ep),
                "reason": reason,
            }
        )


@dataclass(frozen=True, eq=False)
class CohortResult:
    """A built cohort: the kept frames and the attrition table.

    Attributes
    ----------
    cohort : Cohort
    episodes : DataFrame
        Kept episodes (``arm`` is the planned arm for intention-to-treat).
    outcomes : DataFrame
        Outcomes of the kept episodes on the cohort's instrument.
    sessions : DataFrame
        Sessions linked to the kept episodes.
    attrition : DataFrame
        :data:`ATTRITION_COLUMNS`, one row per step.
    """

    cohort: Cohort
    episodes: pd.DataFrame
    outcomes: pd.DataFrame
    sessions: pd.DataFrame
    attrition: pd.DataFrame = field(repr=False)

    @property
    def excluded(self) -> dict[str, int]:
        """Reason key → episodes excluded, for steps that excluded any."""
        steps = self.attrition.iloc[1:]
        return {str(k): int(n) for k, n in zip(steps["key"], steps["excluded"], strict=True) if n}

    @property
    def n(self) -> dict[str, int]:
        """Episodes kept per arm (in the cohort's arm order)."""
        return {a: int((self.episodes["arm"] == a).sum()) for a in self.cohort.arms}

    def summary(self) -> pd.DataFrame:
        """The attrition table (a copy)."""
        return self.attrition.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable cohort definition, counts and attrition."""
        c = self.cohort
        return jsonable(
            {
                "cohort": {
                    "condition": c.condition,
                    "instrument": c.instrument,
                    "arms": list(c.arms),
                    "start": None if c.start is None else str(c.start),
                    "end": None if c.end is None else str(c.end),
                    "clinics": None if c.clinics is None else list(c.clinics),
                    "min_visits": c.min_visits,
                    "per_protocol": c.per_protocol,
                    "min_dose_fraction": c.min_dose_fraction,
                    "exclude_wrong_polarity": c.exclude_wrong_polarity,
                    "intention_to_treat": c.intention_to_treat,
                },
                "n": self.n,
                "excluded": self.excluded,
                "attrition": self.attrition,
            }
        )

    def plot(self) -> go.Figure:
        """Attrition diagram: remaining episodes after each step, exclusions annotated.

        Returns
        -------
        plotly.graph_objects.Figure
            Never shown; call ``.show()`` or write it yourself.
        """
        a = self.attrition
        labels = [
            s if i == 0 or not n else f"{s}<br>−{n:,}: {r}"
            for i, (s, n, r) in enumerate(zip(a["step"], a["excluded"], a["reason"], strict=True))
        ]
        fig = go.Figure(
            go.Funnel(
                y=labels,
                x=a["remaining"].tolist(),
                textinfo="value",
                marker={"color": ["#4c78a8" if n == 0 else "#e45756" for n in a["excluded"]]},
            )
        )
        arms = ", ".join(f"{k}: {v:,}" for k, v in self.n.items())
        fig.update_layout(
            title=(
                f"Cohort {self.cohort.condition} / {self.cohort.instrument}: "
                f"{len(self.episodes):,} episodes kept ({arms})"
            ),
            margin={"l": 320},
        )
        return fig

    def _repr_html_(self) -> str:
        head = html.escape(
            f"Cohort {self.cohort.condition} / {self.cohort.instrument}: "
            f"{len(self.episodes)} episodes kept"
        )
        return f"<p><b>{head}</b></p>" + self.attrition.to_html(index=False)
