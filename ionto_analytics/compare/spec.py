"""What one comparison asks, declared once: :class:`ComparisonSpec`.

``ionto compare`` builds it from its options and passes it down unchanged:
:func:`ionto_analytics.compare.command.run_compare` → ``compare_frames`` → the cohort
(:meth:`ComparisonSpec.cohort`) and the estimator.

Examples
--------
>>> spec = ComparisonSpec("epicondylitis", "prtee", ("ionto+exercise", "exercise"), week=12)
>>> spec.week, spec.method, spec.cohort().arms
(12, 'ancova', ('ionto+exercise', 'exercise'))
>>> ComparisonSpec("epicondylitis", "prtee", ("ionto+exercise", "exercise"), method="bayes")
Traceback (most recent call last):
...
data_schemas.errors.InputError: method must be one of ['ancova', 'mixed', 'iptw', \
'mmrm', 'ipcw'], got 'bayes'
"""

from __future__ import annotations

from dataclasses import dataclass

from ionto_analytics.cohorts import Cohort
from ionto_analytics.errors import InputError

__all__ = ["METHODS", "ComparisonSpec"]

METHODS: tuple[str, ...] = ("ancova", "mixed", "iptw", "mmrm", "ipcw")
"""Estimators ``ionto compare --method`` accepts."""


@dataclass(frozen=True)
class ComparisonSpec:
    """The options of one comparison; checked on construction.

    Parameters
    ----------
    condition : str
        Condition or family key.
    instrument : str
        Instrument key.
    arms : (str, str)
        First and second arm; the estimate is first − second.
    week : int
        Follow-up week, 2 or more (window rule of :mod:`ionto_analytics.outcomes`).
    method : {"ancova", "mixed", "iptw", "mmrm", "ipcw"}
        Estimator (:data:`METHODS`).
    per_protocol, intention_to_treat : bool
        Cohort rules (:class:`ionto_analytics.cohorts.Cohort`); they exclude each other.
    adjust_for : tuple of str or None
        Override of the adjustment set besides baseline and clinic (columns of the
        analysis frame, e.g. ``("age_years", "intake_visa_a")``); None: age, sex, symptom
        duration and the intake score of every instrument collected for the condition
        (:func:`ionto_analytics.compare.frame.comparison_frame`).
    covariance : str or None
        ``method="mmrm"`` only: its ``covariance`` (:func:`ionto_analytics.compare.mmrm.mmrm`,
        e.g. ``"unstructured"`` as an analysis plan pre-specifies it); None: the MMRM's
        default, the structure of smallest REML AIC.

    Examples
    --------
    >>> ComparisonSpec("epicondylitis", "prtee", ["ionto+exercise", "exercise"]).arms
    ('ionto+exercise', 'exercise')
    >>> ComparisonSpec("epicondylitis", "prtee", ("ionto+exercise", "exercise"),
    ...                covariance="unstructured")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: covariance is an option of method 'mmrm' (the MMRM's \
covariance structure), not of 'ancova': add --method mmrm or leave --covariance out
    >>> ComparisonSpec("knee", "prtee", ("ionto+exercise", "exercise"))
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: Cohort condition: unknown condition 'knee'; ...
    """

    condition: str
    instrument: str
    arms: tuple[str, str]
    week: int = 6
    method: str = "ancova"
    per_protocol: bool = False
    intention_to_treat: bool = False
    adjust_for: tuple[str, ...] | None = None
    covariance: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        if self.covariance is not None and self.method != "mmrm":
            raise InputError(
                f"covariance is an option of method 'mmrm' (the MMRM's covariance structure), "
                f"not of {self.method!r}: add --method mmrm or leave --covariance out"
            )
        arms = (self.arms,) if isinstance(self.arms, str) else tuple(self.arms)
        if len(arms) != 2:
            raise InputError(
                f"a comparison needs exactly two arms (first, second), got {self.arms!r}"
            )
        object.__setattr__(self, "arms", arms)
        try:
            week = int(self.week)
        except (TypeError, ValueError):
            raise InputError(f"week must be a whole number of weeks, got {self.week!r}") from None
        if week <= 1:
            raise InputError(
                f"week must be 2 or more (week 1 overlaps the baseline), got {self.week!r}"
            )
        object.__setattr__(self, "week", week)
        if self.adjust_for is not None:
            if isinstance(self.adjust_for, str):
                raise InputError(
                    f"adjust_for must be a sequence of column names, got {self.adjust_for!r}"
                )
            object.__setattr__(self, "adjust_for", tuple(self.adjust_for))
        self.cohort()  # the condition, instrument and arm keys, before any data is read

    def cohort(self) -> Cohort:
        """The cohort the comparison is made in (its attrition is reported).

        Examples
        --------
        >>> spec = ComparisonSpec("plantar_fasciitis", "ffi", ("exercise+manual", "exercise"),
        ...                       per_protocol=True)
        >>> spec.cohort().per_protocol
        True
        """
        return Cohort(
            self.condition,
            self.instrument,
            self.arms,
            per_protocol=self.per_protocol,
            intention_to_treat=self.intention_to_treat,
        )
