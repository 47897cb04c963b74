"""Age-matched single-leg stance norms (Springer et al. 2007, eyes open, best of 3 trials)."""

from __future__ import annotations

import pytest

from station.scoring.norms import SPRINGER_2007, SPRINGER_2007_CITATION, norm_for_age, norm_reference


@pytest.mark.parametrize(
    "age,group,hold",
    [
        (18, "18-39", 44.0), (25.5, "18-39", 44.0), (39.99, "18-39", 44.0),
        (40, "40-49", 41.0), (49, "40-49", 41.0),
        (50, "50-59", 41.0), (59.9, "50-59", 41.0),
        (60, "60-69", 32.0), (69, "60-69", 32.0),
        (70, "70-79", 21.0), (79.5, "70-79", 21.0),
        (80, "80-99", 9.0), (99, "80-99", 9.0),
    ],
)
def test_the_table(age, group, hold):
    norm = norm_for_age(age)
    assert norm is not None and norm.label == group and norm.hold_s == hold


def test_groups_cover_18_to_99_without_gaps():
    ages = [a for n in SPRINGER_2007 for a in range(n.min_age_years, n.max_age_years + 1)]
    assert ages == list(range(18, 100))


@pytest.mark.parametrize("age", [0, 12, 17.9, 100, 104])
def test_outside_the_table_there_is_no_norm(age):
    assert norm_for_age(age) is None
    ref = norm_reference(age)
    assert ref is not None and ref["age_group"] is None and ref["norm_hold_s"] is None
    assert ref["expected_to_complete"] is None and ref["source"] == SPRINGER_2007_CITATION


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "60", True])
def test_bad_ages_are_refused(bad):
    with pytest.raises(ValueError, match="age_years"):
        norm_for_age(bad)


def test_reference_cites_the_source_and_says_what_30_s_means():
    assert norm_reference(None) is None
    young = norm_reference(30)
    assert young == {
        "age_years": 30.0, "age_group": "18-39", "norm_hold_s": 44.0, "expected_hold_s": 30.0,
        "expected_to_complete": True, "condition": "eyes open, best of 3 trials", "source": SPRINGER_2007_CITATION,
    }
    assert "Springer" in young["source"] and "2007" in young["source"] and "J Geriatr Phys Ther" in young["source"]
    # 60-69: 32 s, still above the 30 s hold; 70-79: 21 s, not expected to complete
    assert norm_reference(65)["expected_to_complete"] is True
    old = norm_reference(75)
    assert old["expected_to_complete"] is False and old["expected_hold_s"] == 21.0
    assert norm_reference(85)["expected_hold_s"] == 9.0
