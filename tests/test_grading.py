"""Grader agreement on tricky pairs, answer extraction, and math-verify in worker processes."""
from __future__ import annotations

from fractions import Fraction

import pytest

from ttsplan.features.grading import extract_answer, grade, math_verify_grade, normalize_answer, parse_number

# (prediction, gold, expected) — written by hand
TRICKY = [
    ("1/2", "0.5", True), ("\\frac{1}{2}", "0.5", True), ("\\dfrac12", "1/2", True), ("\\tfrac{1}{2}", ".5", True),
    ("-\\frac{3}{4}", "-0.75", True), ("3 \\frac{1}{2}", "3.5", True), ("3 1/2", "7/2", True),
    ("1,000", "1000", True), ("1,234,567", "1234567", True), ("1,2", "12", False),
    ("5 cm", "5", True), ("12 apples", "12", True), ("\\$5", "5", True), ("$18$", "18", True),
    ("50%", "50", True), ("50\\%", "50", True), ("90^\\circ", "90", True), ("10 \\text{ meters}", "10", True),
    ("10", "10.0", True), ("2.50", "2.5", True), ("1e3", "1000", True), ("7.", "7", True),
    ("\\boxed{7}", "7", True), ("0.333", "\\frac{1}{3}", True), ("0.67", "2/3", True),
    ("0.3", "1/3", False), ("0.66", "2/3", False), ("0.5", "1/3", False), ("2", "3", False),
    ("-2", "2", False), ("\\text{Yes}", "yes", True), ("(1,2)", "(1, 2)", True), ("B", "b", True),
    ("x", "y", False), (None, "3", False),
]


@pytest.mark.parametrize("pred,gold,expected", TRICKY)
def test_grader_on_tricky_pairs(pred, gold, expected):
    assert grade(pred, gold) is expected


def test_unlabeled_gold_is_none_and_parse_number_is_exact():
    assert grade("3", None) is None
    assert parse_number("\\frac{22}{7}") == Fraction(22, 7)
    assert parse_number("1,234.5") == Fraction(2469, 2)
    assert parse_number("\\sqrt{2}") is None and parse_number("abc") is None
    assert normalize_answer("  \\text{New   York}. ") == "new york"


@pytest.mark.parametrize("text,kind,expected", [
    (" 52\nQ: next", "short", "52"), (" 52.", "short", "52"), ("  B is it", "short", "b"),
    (" -7 or so", "short", "-7"), ("\n\n 1,000 apples", "short", "1000"), ("", "short", None),
    ("so $\\boxed{\\frac{1}{2}}$ done", "math", "\\frac{1}{2}"), ("\\boxed{a{b}c} x", "math", "a{b}c"),
    ("The answer is 42.", "math", "42"), ("work\n#### 1,200", "math", "1,200"),
    ("3 + 4 = 7 then 8", "math", "8"), ("no numbers", "math", None),
])
def test_extract_answer(text, kind, expected):
    assert extract_answer(text, kind) == expected


def test_math_verify_in_a_process_pool_agrees_on_symbolic_answers():
    pytest.importorskip("math_verify", reason="math-verify not installed (extra 'grading')")
    pairs = [("\\frac{1}{2}", "0.5"), ("\\sqrt{8}", "2\\sqrt{2}"), ("x^2+2x+1", "(x+1)^2"), ("3", "4"),
             (None, "1"), ("1/2", None)]
    got = math_verify_grade(pairs, timeout_s=5, workers=1)
    assert got[:4] == [True, True, True, False]
    assert got[4] is False and got[5] is None
