"""Small-cell suppression: a crafted small clinic where naive totals give a hidden cell away.

Every published table must satisfy, for each row and column equation ``total = Σ cells``:
no equation with exactly one hidden entry; when the total is published, the hidden cells
add up to 0 or ≥ 11; and no hidden cell is pinned to a single value by all equations
together (checked here with an independent enumeration on the small table, and by linear
programming on larger ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ionto_analytics.errors import InputError
from ionto_analytics.suppression import (
    COMPLEMENTARY_TEXT,
    SUPPRESSED_TEXT,
    count_label,
    derived_mask,
    feasible_intervals,
    is_small,
    margin_equations,
    suppress,
    suppress_counts,
)

# A small clinic's quarter: episodes by condition (rows) and arm (columns).
SMALL_CLINIC = pd.DataFrame(
    {
        "exercise": [14, 22, 12],
        "ionto+exercise": [3, 18, 15],
        "exercise+manual": [16, 12, 19],
    },
    index=["achilles_tendinopathy", "lateral_epicondylitis", "plantar_fasciitis"],
)


def _equations_hold(values: np.ndarray, mask: np.ndarray, eqs) -> list[str]:
    """Independent check of the line rules (not the module's own ``problems``)."""
    bad = []
    for eq in eqs:
        hidden = [c for c in eq.cells() if mask[c]]
        if len(hidden) == 1:
            bad.append(f"only {hidden[0]} hidden in the line of {eq.total}")
        if not mask[eq.total]:
            s = sum(values[c] for c in eq.members if mask[c])
            if 0 < s < 11:
                bad.append(f"hidden cells of {eq.total} add up to {s}")
    return bad


def _brute_force_candidates(values, mask, eqs, cell, limit=60) -> set[int]:
    """Every value ``cell`` can take in some non-negative integer table consistent with the
    published cells and every equation: all combinations of the hidden cells from 0 to
    ``limit`` − 1 are enumerated at once with numpy (no linear programming)."""
    hidden = [c for c in np.ndindex(values.shape) if mask[c]]
    assert len(hidden) <= 4, "keep the enumeration small"
    grids = np.meshgrid(*[np.arange(limit)] * len(hidden), indexing="ij")
    flat = {c: g.ravel() for c, g in zip(hidden, grids, strict=True)}

    def cell_values(c):
        return flat[c] if c in flat else np.full(grids[0].size, values[c])

    ok = np.ones(grids[0].size, bool)
    for eq in eqs:
        ok &= cell_values(eq.total) == sum(cell_values(m) for m in eq.members)
    return {int(v) for v in cell_values(cell)[ok]}


def test_naive_suppression_of_the_small_clinic_reveals_the_hidden_cell() -> None:
    s = suppress_counts(SMALL_CLINIC, total_row=True, total_col=True)
    values = s.values.to_numpy()
    primary = s.primary.to_numpy()
    assert primary.sum() == 1 and s.values.iloc[0, 1] == 3
    # naive: hide only the 3; its row total 33 and the row's other cells give it away
    row_total, others = s.values.iloc[0, 3], s.values.iloc[0, [0, 2]].sum()
    assert row_total - others == 3
    col_total, col_others = s.values.iloc[3, 1], s.values.iloc[[1, 2], 1].sum()
    assert col_total - col_others == 3
    naive = feasible_intervals(values, primary, s.equations)
    assert naive[(0, 1)] == (3.0, 3.0)
    assert _brute_force_candidates(values, primary, s.equations, (0, 1)) == {3}


def test_complementary_suppression_protects_every_row_and_column_equation() -> None:
    s = suppress_counts(SMALL_CLINIC, total_row=True, total_col=True)
    values, mask = s.values.to_numpy(), s.mask.to_numpy()
    assert mask[0, 1] and mask.sum() >= 4  # the 3 plus its complements
    assert _equations_hold(values, mask, s.equations) == []
    assert s.problems() == []
    for cell, (lo, hi) in feasible_intervals(values, mask, s.equations).items():
        assert hi - lo >= 1, cell
    candidates = _brute_force_candidates(values, mask, s.equations, (0, 1))
    assert len(candidates) > 1 and 3 in candidates
    shown = s.display()
    assert shown.iloc[0, 1] == SUPPRESSED_TEXT
    assert shown.loc["Total", "Total"] == f"{SMALL_CLINIC.to_numpy().sum():,}"


def test_two_small_cells_that_add_up_to_a_small_number_pull_in_a_third() -> None:
    """3 and 4 hidden in a row with its total published: 3 + 4 = 7 would be derivable."""
    t = pd.DataFrame({"a": [3], "b": [4], "c": [30], "d": [25]})
    s = suppress_counts(t, total_row=False, total_col=True)
    hidden = s.values.iloc[0][s.mask.iloc[0]].drop("Total", errors="ignore")
    assert hidden.sum() >= 11 and len(hidden) == 3
    assert s.problems() == []


def test_percentages_of_hidden_counts_are_hidden() -> None:
    s = suppress_counts(pd.DataFrame({"responders": [5, 40, 30]}), total_row=True)
    n = pd.Series([50, 60, 45, 155])
    pct = s.values["responders"].to_numpy() / n.to_numpy()
    hide = derived_mask(s.mask["responders"], np.zeros(4, bool))
    assert hide[0] and hide.sum() >= 2  # 5/50 = 10% would reveal 5, and its complement too
    assert not np.isnan(pct).any()


def test_non_additive_patients_column_shows_its_own_total_and_stays_protected() -> None:
    t = pd.DataFrame({"patients": [3, 30, 40], "episodes": [3, 31, 42]}, index=list("abc"))
    s = suppress_counts(t, total_row=True, additive=["episodes"], totals={"patients": 70})
    shown = s.display()
    assert shown.loc["Total", "patients"] == "70"
    assert shown.loc["a", "patients"] == SUPPRESSED_TEXT
    assert shown["patients"].isin([SUPPRESSED_TEXT, COMPLEMENTARY_TEXT]).sum() >= 2  # 70−30−40
    assert s.problems() == []


def test_zero_is_published_and_a_small_total_is_hidden() -> None:
    s = suppress_counts(pd.DataFrame({"n": [0, 4, 3]}), total_row=True)
    assert s.display()["n"].tolist() == ["0", SUPPRESSED_TEXT, SUPPRESSED_TEXT, SUPPRESSED_TEXT]


def test_one_count_is_labelled_by_the_same_rule_as_a_table_cell() -> None:
    counts = [0, 1, 10, 11, 2500]
    assert [count_label(k) for k in counts] == ["0", "<11", "<11", "11", "2,500"]
    table = suppress_counts(pd.DataFrame({"n": counts}), total_row=False).display()["n"]
    assert [count_label(k) for k in counts] == table.tolist()
    assert [is_small(k) for k in counts] == [False, True, True, False, False]
    assert count_label(float("nan")) == "–"


def test_bad_input_is_refused_and_input_not_modified() -> None:
    t = SMALL_CLINIC.copy()
    suppress_counts(t, total_row=True, total_col=True)
    pd.testing.assert_frame_equal(t, SMALL_CLINIC)
    with pytest.raises(InputError, match="non-negative whole count"):
        suppress_counts(pd.DataFrame({"n": [-1, 20]}))
    with pytest.raises(InputError, match="add up to"):
        suppress(np.array([[3, 20, 99]]), margin_equations((1, 3), total_row=False,
                                                          total_col=True))  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(2, 5).flatmap(
        lambda r: st.integers(2, 5).flatmap(
            lambda c: st.lists(
                st.lists(st.one_of(st.integers(0, 12), st.integers(0, 60)), min_size=c, max_size=c),
                min_size=r,
                max_size=r,
            )
        )
    )
)
def test_any_table_with_both_margins_ends_protected(rows: list[list[int]]) -> None:
    s = suppress_counts(pd.DataFrame(rows), total_row=True, total_col=True)
    values, mask = s.values.to_numpy(), s.mask.to_numpy()
    assert not ((values >= 1) & (values <= 10) & ~mask).any()
    assert _equations_hold(values, mask, s.equations) == []
    for cell, (lo, hi) in feasible_intervals(values, mask, s.equations).items():
        assert hi - lo >= 1, cell


def test_a_cell_hidden_only_to_protect_another_never_prints_the_small_count_mark() -> None:
    """The issue's case: KD-400 erythema hidden beside "any reaction 114" read "<11"."""
    t = pd.DataFrame(
        {"erythema": [4, 60, 50], "burn": [0, 3, 20]}, index=["DP-200", "KD-400", "IP-9"]
    )
    s = suppress_counts(t, total_row=True, total_col=True)
    shown, values = s.display(), s.values
    for r in values.index:
        for c in values.columns:
            if s.mask.loc[r, c]:
                expected = SUPPRESSED_TEXT if 1 <= values.loc[r, c] <= 10 else COMPLEMENTARY_TEXT
                assert shown.loc[r, c] == expected, (r, c, values.loc[r, c])
    assert (shown == COMPLEMENTARY_TEXT).to_numpy().sum() >= 2
    assert shown.loc["KD-400", "burn"] == SUPPRESSED_TEXT
    assert s.problems() == []


def test_the_marks_themselves_do_not_give_a_hidden_count_away() -> None:
    """Reading "<11" as 1-10 and "‡" as 11+, no hidden cell is pinned to one value."""
    t = pd.DataFrame({"a": [10, 11], "b": [11, 30]}, index=["x", "y"])
    s = suppress_counts(t, total_row=True, total_col=True)
    v, m = s.values.to_numpy(float), s.mask.to_numpy(bool)
    for cell, (lo, hi) in feasible_intervals(v, m, s.equations, s.threshold).items():
        assert hi - lo >= 1, (cell, lo, hi)
    assert s.problems() == []
