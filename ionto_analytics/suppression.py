"""Small-cell suppression with complementary suppression, for every table a report publishes.

The CMS cell-suppression policy (DOMAIN.md section 5 [S58]) bars publishing any count of 1
to 10, *and* any cell from which such a count can be derived through totals or percentages.
Hiding the small cells alone (primary suppression) is not enough: in a row ``3, 25, 40``
with its total ``68`` published, the hidden ``3`` is ``68 − 25 − 40``. This module hides
enough further cells (complementary suppression) that no hidden value can be worked out.

Algorithm
---------
A table is a grid of non-negative integer counts plus *equations* — one per line that has a
published total: ``total = member_1 + ... + member_k`` (:func:`margin_equations` makes them
for a table with a total row and/or a total column, including the grand total's own
equations). Then:

1. **Primary**: every cell (members and totals alike) with ``1 ≤ value < threshold`` (11)
   is suppressed. Zeros are published (CMS allows 0).
2. **Line rules**, repeated over all equations until nothing changes:

   a. *single unknown*: an equation with exactly one suppressed entry would give it away,
      so one more entry is suppressed;
   b. *residual*: when the total is published, the suppressed members add up to
      ``total − published members``; that sum must itself be 0 or ≥ ``threshold``
      (two hidden cells known to add up to 7 are both small), so members are suppressed
      until it is.

   The entry added is the smallest published non-zero member (least information lost),
   else a published zero member, else the line's total.
3. **Audit**: for every suppressed cell, the smallest and largest value it can take given
   all equations at once and what its mark says (``"<11"``: 1 to 10; ``"‡"`` over a
   non-zero count: 11 or more; else ``≥ 0``) are found by linear programming
   (:func:`feasible_intervals`). A cell whose interval has shrunk to one value is
   derivable through a chain of equations; the smallest published cell of one of its
   equations is suppressed and steps 2-3 are repeated.

Suppression only ever grows, so the loop ends. Percentages, rates and means inherit the
suppression of every count they are computed from (:func:`derived_mask`): a percentage
with its denominator would reveal the numerator.

Examples
--------
>>> import pandas as pd
>>> counts = pd.DataFrame({"visits": [3, 25, 40]}, index=["clinic_a", "clinic_b", "clinic_c"])
>>> s = suppress_counts(counts, total_row=True)
>>> s.display()["visits"].tolist()
['<11', '‡', '40', '68']

``"<11"`` marks only a true count of 1 to 10; a cell hidden to protect another (its own
value 0 or 11 and more) shows :data:`COMPLEMENTARY_TEXT` instead, explained once per page by
:func:`suppression_footnote`. Shares of several events are computed over **all** of them
(published or not), so a cumulative share ends at 100 % of the true total.
>>> s.problems()
[]
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from ionto_analytics.errors import InputError

__all__ = [
    "COMPLEMENTARY_TEXT",
    "SUPPRESSED_TEXT",
    "THRESHOLD",
    "Equation",
    "Suppressed",
    "cell_mark",
    "count_label",
    "derived_mask",
    "feasible_intervals",
    "format_count",
    "is_small",
    "margin_equations",
    "small",
    "suppress",
    "suppress_counts",
    "suppression_footnote",
]

THRESHOLD = 11
"""Smallest count that may be published (besides 0): CMS bars 1-10."""

SUPPRESSED_TEXT = "<11"
"""What a cell hiding a true count of 1 to 10 shows (primary suppression)."""

COMPLEMENTARY_TEXT = "‡"
"""What a cell hidden only to protect another shows (complementary suppression)."""

Cell = tuple[int, int]
"""(row position, column position) in the table."""


@dataclass(frozen=True)
class Equation:
    """``total = sum(members)``: cells given as (row, column) positions.

    Examples
    --------
    >>> Equation(total=(0, 2), members=((0, 0), (0, 1))).cells()
    ((0, 2), (0, 0), (0, 1))
    """

    total: Cell
    members: tuple[Cell, ...]

    def cells(self) -> tuple[Cell, ...]:
        """The total first, then the members."""
        return (self.total, *self.members)


def margin_equations(
    shape: tuple[int, int], *, total_row: bool, total_col: bool
) -> tuple[Equation, ...]:
    """The equations of a table whose last row and/or last column hold totals.

    With a total row, each column's last cell is the sum of the cells above it; with a
    total column, each row's last cell is the sum of the cells to its left. With both, the
    grand total (bottom right) is in two equations (the sum of the row totals and of the
    column totals).

    Examples
    --------
    >>> [e.total for e in margin_equations((3, 3), total_row=True, total_col=True)]
    [(2, 0), (2, 1), (2, 2), (0, 2), (1, 2), (2, 2)]
    """
    n_rows, n_cols = shape
    body_rows = n_rows - 1 if total_row else n_rows
    body_cols = n_cols - 1 if total_col else n_cols
    eqs: list[Equation] = []
    if total_row:
        for j in range(n_cols):
            eqs.append(Equation((n_rows - 1, j), tuple((i, j) for i in range(body_rows))))
    if total_col:
        for i in range(n_rows):
            eqs.append(Equation((i, n_cols - 1), tuple((i, j) for j in range(body_cols))))
    return tuple(eqs)


def _check_counts(values: np.ndarray) -> None:
    if values.ndim != 2:
        raise InputError(f"suppression: expected a 2-D table of counts, got {values.ndim}-D")
    if not np.isfinite(values).all() or (values < 0).any() or (values != np.round(values)).any():
        raise InputError(
            "suppression: every cell must be a non-negative whole count (got negative, "
            "fractional or missing values); suppress counts, then derive rates from them"
        )


def _check_equations(values: np.ndarray, equations: Sequence[Equation]) -> None:
    for eq in equations:
        total = values[eq.total]
        members = sum(values[c] for c in eq.members)
        if total != members:
            raise InputError(
                f"suppression: the total at {eq.total} is {total:g} but its members add up "
                f"to {members:g}; a total that is not the sum of its cells cannot be protected"
            )


def feasible_intervals(
    values: np.ndarray,
    mask: np.ndarray,
    equations: Sequence[Equation],
    threshold: int | None = None,
) -> dict[Cell, tuple[float, float]]:
    """The range each suppressed cell can take given the published cells and the equations.

    Solves ``min`` and ``max`` of each hidden cell subject to every equation and all cells
    ``≥ 0`` (linear programming, HiGHS). An interval of width 0 means the cell is derivable.

    Parameters
    ----------
    values : ndarray
        The true counts (used only for the published cells and the equations' totals).
    mask : ndarray of bool
        True where a cell is suppressed.
    equations : sequence of Equation
    threshold : int, optional
        When given, the attacker also reads the marks: a ``"<11"`` cell is 1 to
        ``threshold − 1``, a ``"‡"`` cell hiding a larger count is at least ``threshold``.

    Returns
    -------
    dict
        (row, col) → (lowest, highest) value an attacker could infer.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[3, 25, 28]]); eq = margin_equations((1, 3), total_row=False,
    ...                                                    total_col=True)
    >>> feasible_intervals(v, np.array([[True, False, False]]), eq)
    {(0, 0): (3.0, 3.0)}
    """
    hidden = [tuple(int(k) for k in c) for c in np.argwhere(mask)]
    if not hidden:
        return {}
    index = {c: k for k, c in enumerate(hidden)}
    a_eq, b_eq = [], []
    for eq in equations:
        row = np.zeros(len(hidden))
        rhs = 0.0
        for sign, cell in [(1.0, eq.total)] + [(-1.0, m) for m in eq.members]:
            if cell in index:
                row[index[cell]] += sign
            else:
                rhs -= sign * float(values[cell])
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    out: dict[Cell, tuple[float, float]] = {}
    bounds = [_mark_bounds(float(values[c]), threshold) for c in hidden]
    for k, cell in enumerate(hidden):
        if not a_eq:
            out[cell] = (0.0, np.inf)
            continue
        c = np.zeros(len(hidden))
        c[k] = 1.0
        lo = linprog(c, A_eq=np.array(a_eq), b_eq=np.array(b_eq), bounds=bounds, method="highs")
        hi = linprog(-c, A_eq=np.array(a_eq), b_eq=np.array(b_eq), bounds=bounds, method="highs")
        low = float(lo.fun) if lo.status == 0 else 0.0
        high = float(-hi.fun) if hi.status == 0 else np.inf  # status 3: unbounded
        out[cell] = (round(low, 6), round(high, 6))
    return out


def _mark_bounds(value: float, threshold: int | None) -> tuple[float, float | None]:
    """What a hidden cell's mark tells a reader about its value (see :func:`cell_mark`)."""
    if threshold is None or value == 0:
        return (0.0, None)
    return (1.0, threshold - 1.0) if value < threshold else (float(threshold), None)


def _pick(values: np.ndarray, mask: np.ndarray, eq: Equation) -> Cell | None:
    """The entry of ``eq`` to suppress next: smallest non-zero member, a zero, the total."""
    free = [m for m in eq.members if not mask[m]]
    nonzero = sorted((c for c in free if values[c] > 0), key=lambda c: (values[c], c))
    if nonzero:
        return nonzero[0]
    if free:
        return sorted(free)[0]
    return None if mask[eq.total] else eq.total


def _line_pass(
    values: np.ndarray, mask: np.ndarray, equations: Sequence[Equation], threshold: int
) -> bool:
    changed = False
    for eq in equations:
        while True:
            unknown = [c for c in eq.cells() if mask[c]]
            need = False
            if len(unknown) == 1:
                need = True
            elif not mask[eq.total]:
                hidden_sum = sum(values[m] for m in eq.members if mask[m])
                need = 0 < hidden_sum < threshold
            if not need:
                break
            cell = _pick(values, mask, eq)
            if cell is None:
                break
            mask[cell] = True
            changed = True
    return changed


def suppress(
    values: np.ndarray, equations: Sequence[Equation], threshold: int = THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Primary and complementary suppression of a table of counts (algorithm above).

    Parameters
    ----------
    values : array-like of int
        Counts, totals included, ≥ 0.
    equations : sequence of Equation
        Which cells are totals of which (:func:`margin_equations`).
    threshold : int
        Counts from 1 to ``threshold − 1`` are suppressed.

    Returns
    -------
    (mask, primary) : tuple of ndarray of bool
        Every suppressed cell, and the primary (small) cells among them.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[3, 25, 40, 68]])
    >>> mask, primary = suppress(v, margin_equations((1, 4), total_row=False, total_col=True))
    >>> mask.astype(int).tolist(), primary.astype(int).tolist()
    ([[1, 1, 0, 0]], [[1, 0, 0, 0]])
    """
    v = np.asarray(values, dtype=float)
    _check_counts(v)
    _check_equations(v, equations)
    primary = (v >= 1) & (v < threshold)
    mask = primary.copy()
    for _ in range(v.size + 1):
        while _line_pass(v, mask, equations, threshold):
            pass
        derivable = [
            c
            for c, (lo, hi) in feasible_intervals(v, mask, equations, threshold).items()
            if hi - lo < 0.5
        ]
        if not derivable:
            break
        cell = derivable[0]
        added = False
        for eq in equations:
            if cell in eq.cells():
                pick = _pick(v, mask, eq)
                if pick is not None:
                    mask[pick] = True
                    added = True
                    break
        if not added:
            break  # every entry of every equation around it is hidden already
    return mask, primary


@dataclass(frozen=True, eq=False)
class Suppressed:
    """A count table after suppression: the true values, what is hidden, and why.

    Attributes
    ----------
    values : DataFrame
        The counts, totals included (never publish this frame itself).
    mask : DataFrame of bool
        True where the cell is suppressed.
    primary : DataFrame of bool
        True where the cell is itself a small count.
    equations : tuple of Equation
        The totals the table publishes.
    threshold : int
    shown : mapping
        (row label, column label) → the value printed instead of ``values`` there: the
        true total of a non-additive column (distinct patients), whose suppression was
        decided as if it were the sum of its rows, so near-additivity reveals nothing.
    """

    values: pd.DataFrame
    mask: pd.DataFrame
    primary: pd.DataFrame
    equations: tuple[Equation, ...]
    threshold: int = THRESHOLD
    shown: Mapping[tuple[Hashable, Hashable], int] = field(default_factory=dict)

    def _shown_values(self) -> pd.DataFrame:
        out = self.values.copy()
        for (r, c), v in self.shown.items():
            out.loc[r, c] = v
        return out

    def published(self) -> pd.DataFrame:
        """The values with every suppressed cell set to NaN (floats).

        Examples
        --------
        >>> import pandas as pd
        >>> suppress_counts(pd.DataFrame({"n": [5, 30]})).published()["n"].tolist()
        [nan, nan, 35.0]
        """
        return self._shown_values().astype(float).mask(self.mask)

    def display(self) -> pd.DataFrame:
        """Strings to print: counts with thousands separators, :func:`cell_mark` where hidden.

        Examples
        --------
        >>> import pandas as pd
        >>> suppress_counts(pd.DataFrame({"n": [5, 30]})).display()["n"].tolist()
        ['<11', '‡', '35']
        """
        shown = self._shown_values()
        return pd.DataFrame(
            {
                c: [
                    cell_mark(v, self.threshold) if m else format_count(v)
                    for v, m in zip(shown[c], self.mask[c], strict=True)
                ]
                for c in shown.columns
            },
            index=self.values.index,
        )

    def problems(self) -> list[str]:
        """Every way a hidden value could still be worked out; empty when protected.

        Checks each equation (no single hidden entry; hidden members of a published total
        add up to 0 or ≥ ``threshold``), no published cell is 1 to ``threshold − 1``, and
        the joint audit of :func:`feasible_intervals` (no hidden cell pinned to one value).
        """
        v, m = self.values.to_numpy(float), self.mask.to_numpy(bool)
        out = [
            f"small count {v[tuple(c)]:g} published at {tuple(int(k) for k in c)}"
            for c in np.argwhere((v >= 1) & (v < self.threshold) & ~m)
        ]
        for eq in self.equations:
            unknown = [c for c in eq.cells() if m[c]]
            if len(unknown) == 1:
                out.append(
                    f"{unknown[0]} is the only hidden entry of the line totalled at {eq.total}"
                )
            if not m[eq.total]:
                s = sum(v[c] for c in eq.members if m[c])
                if 0 < s < self.threshold:
                    out.append(f"hidden members of the line totalled at {eq.total} add up to {s:g}")
        marks = feasible_intervals(v, m, self.equations, self.threshold)
        for cell, (lo, hi) in marks.items():
            if hi - lo < 0.5:
                out.append(f"{cell} is derivable: it can only be {lo:g}")
        return out


def suppress_counts(
    counts: pd.DataFrame,
    *,
    total_row: bool = True,
    total_col: bool = False,
    threshold: int = THRESHOLD,
    total_label: str = "Total",
    additive: Sequence[str] | None = None,
    totals: Mapping[str, int] | None = None,
) -> Suppressed:
    """Add the totals to a table of counts and suppress it (primary + complementary).

    Parameters
    ----------
    counts : DataFrame
        Non-negative whole counts, one row per group; not modified. Every column is
        totalled down the rows when ``total_row``; the columns are totalled across when
        ``total_col`` (only when they partition something, e.g. clinics).
    total_row, total_col : bool
        Which totals are published.
    threshold : int
        Smallest publishable count besides 0.
    total_label : str
        Label of the added row and/or column.
    additive : sequence of str, optional
        Columns whose total row is the sum of the rows (default: all). A column that is
        not (distinct patients, when a patient can be in two rows) is protected as if its
        total were the sum of its rows (it nearly is), then shows its true total from
        ``totals`` (suppressed when small).
    totals : mapping, optional
        Total-row values of the non-additive columns.

    Returns
    -------
    Suppressed

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"a": [4, 30], "b": [20, 30]}, index=["x", "y"])
    >>> s = suppress_counts(t, total_row=True, total_col=True)
    >>> s.display().values.tolist()
    [['<11', '‡', '24'], ['‡', '‡', '60'], ['34', '50', '84']]
    """
    if not isinstance(counts, pd.DataFrame):
        raise InputError(f"suppress_counts: expected a DataFrame, got {type(counts).__name__}")
    body = counts.copy()
    add = list(body.columns) if additive is None else list(additive)
    other = [c for c in body.columns if c not in add]
    if total_col and other:
        raise InputError("suppress_counts: total_col needs every column to be additive")
    if total_row and [c for c in other if c not in (totals or {})]:
        raise InputError(f"suppress_counts: give totals for the non-additive column(s) {other}")
    if total_col:
        body[total_label] = body.sum(axis=1)
    if total_row:
        body.loc[total_label] = body.sum(axis=0)
    values = body.astype("int64")
    eqs = margin_equations(values.shape, total_row=total_row, total_col=total_col)
    mask, primary = suppress(values.to_numpy(float), eqs, threshold)
    shown = {(total_label, c): int((totals or {})[c]) for c in other} if total_row else {}
    for (r, c), v in shown.items():
        mask[values.index.get_loc(r), values.columns.get_loc(c)] |= 1 <= v < threshold
    return Suppressed(
        values=values,
        mask=pd.DataFrame(mask, index=values.index, columns=values.columns),
        primary=pd.DataFrame(primary, index=values.index, columns=values.columns),
        equations=eqs,
        threshold=threshold,
        shown=shown,
    )


def derived_mask(*masks: pd.Series | pd.DataFrame | np.ndarray) -> np.ndarray:
    """Where a statistic computed from several counts must be hidden: any input hidden.

    Examples
    --------
    >>> import numpy as np
    >>> derived_mask(np.array([True, False, False]), np.array([False, False, True])).tolist()
    [True, False, True]
    """
    arrays = [np.asarray(m, dtype=bool) for m in masks]
    if not arrays:
        raise InputError("derived_mask: give at least one mask")
    return np.logical_or.reduce(arrays)


def small(n: Iterable[float] | pd.Series, threshold: int = THRESHOLD) -> np.ndarray:
    """True where a count is 1 to ``threshold − 1`` (primary suppression of one column).

    Examples
    --------
    >>> small([0, 3, 11]).tolist()
    [False, True, False]
    """
    a = np.asarray(list(n) if not isinstance(n, pd.Series) else n.to_numpy(), dtype=float)
    return (a >= 1) & (a < threshold)


def format_count(value: Hashable) -> str:
    """A count with thousands separators (``"1,234"``); missing as an en dash.

    Examples
    --------
    >>> format_count(1234), format_count(float("nan"))
    ('1,234', '–')
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)


def is_small(n: float | int, threshold: int = THRESHOLD) -> bool:
    """True when one count is 1 to ``threshold − 1`` (may not be published).

    Examples
    --------
    >>> is_small(0), is_small(10), is_small(11)
    (False, True, False)
    """
    return bool(small([n], threshold)[0])


def cell_mark(value: float | int, threshold: int = THRESHOLD) -> str:
    """The mark a hidden cell shows: ``"<11"`` for a true count of 1 to 10, else ``"‡"``.

    Examples
    --------
    >>> cell_mark(4), cell_mark(114), cell_mark(0)
    ('<11', '‡', '‡')
    """
    return SUPPRESSED_TEXT if is_small(value, threshold) else COMPLEMENTARY_TEXT


def suppression_footnote(threshold: int = THRESHOLD) -> str:
    """The one footnote that explains both marks.

    Examples
    --------
    >>> suppression_footnote()[:40]
    '"<11": a count of 1 to 10 patients or ev'
    """
    return (
        f'"{SUPPRESSED_TEXT}": a count of 1 to {threshold - 1} patients or events, hidden. '
        f'"{COMPLEMENTARY_TEXT}": a larger count (or zero) hidden so that a small one cannot '
        "be worked out from the totals (complementary suppression)."
    )


def count_label(n: float | int | None) -> str:
    """One count as shown to readers: :data:`SUPPRESSED_TEXT` for 1 to ``THRESHOLD − 1``,
    else :func:`format_count`.

    Examples
    --------
    >>> count_label(7), count_label(0), count_label(1234), count_label(None)
    ('<11', '0', '1,234', '–')
    """
    if n is not None and not (isinstance(n, float) and np.isnan(n)) and is_small(n):
        return SUPPRESSED_TEXT
    return format_count(n)
