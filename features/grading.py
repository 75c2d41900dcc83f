"""Answer extraction and grading.

The built-in grader is fast and dependency-free: it parses both sides as exact numbers where it
can (integers, decimals, ``1,234``, ``1/2``, ``\\frac{1}{2}``, ``\\dfrac12``, ``3 \\frac{1}{2}``,
``50%``, ``$5``, trailing units such as ``5 cm``) and otherwise compares normalized strings
(case, spaces, ``\\text{}``, ``\\left``/``\\right``, ``$``, trailing period). ``math-verify``
(extra ``grading``) handles symbolic answers; it relies on ``signal.alarm`` so it runs only in worker
*processes* (:func:`math_verify_grade`), with a per-item timeout.

>>> grade("0.5", "1/2"), grade("\\\\frac{1}{2}", "0.5"), grade("1,000", "1000"), grade("5 cm", "5")
(True, True, True, True)
>>> extract_answer("The answer is $\\\\boxed{42}$.", "math")
'42'
>>> extract_answer(" 52\\nQ: next", "short")
'52'
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from ttsplan.features.errors import TtsplanError

_NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+"
_NUM_RE = re.compile(_NUM)
_FRAC_RE = re.compile(r"^([-+]?)\\[dt]?frac\s*\{?\s*([^{}]+?)\s*\}?\s*\{\s*([^{}]+?)\s*\}$|"
                      r"^([-+]?)\\[dt]?frac\s*(\d)\s*(\d)$")
_MIXED_RE = re.compile(r"^([-+]?\d+)\s+(\d+)\s*/\s*(\d+)$")
_UNIT_TAIL = re.compile(r"^(.*?\d)\s*(?:\\%|%|\\text\{\s*[a-zA-Z ]+\}|\\mbox\{\s*[a-zA-Z ]+\}|"
                        r"\^\\circ|°|[a-zA-Z]+(?:\s+[a-zA-Z]+)?\.?)$")


def _strip_latex(s: str) -> str:
    s = s.strip()
    s = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:)", "", s)
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\text\{\s*([^{}]*)\}", r"\1", s) if not re.match(r"^.*\d\s*\\text", s) else s
    s = re.sub(r"^\\boxed\{(.*)\}$", r"\1", s)
    return s.strip()


def normalize_answer(s: str | None) -> str | None:
    """Canonical string form: lowercase, no LaTeX spacing/dollars/\\text, no trailing period.

    >>> normalize_answer("  \\\\text{Yes}. ")
    'yes'
    """
    if s is None:
        return None
    s = _strip_latex(str(s))
    s = re.sub(r"\\text\{\s*([^{}]*)\}", r"\1", s)
    s = s.rstrip(".").strip()
    s = re.sub(r"\s+", " ", s).lower()
    s = re.sub(r"\s*([,;:()\[\]{}])\s*", r"\1", s)
    return s


def parse_number(s: str | None) -> Fraction | None:
    """Exact value of a numeric answer, or None when it is not a plain number.

    >>> parse_number("-\\\\frac{3}{4}"), parse_number("1,234.5"), parse_number("3 1/2"), parse_number("abc")
    (Fraction(-3, 4), Fraction(2469, 2), Fraction(7, 2), None)
    """
    if s is None:
        return None
    t = _strip_latex(str(s)).rstrip(".").strip()
    t = t.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    m = _UNIT_TAIL.match(t)
    if m and not t.endswith(tuple("0123456789")):
        t = m.group(1).strip()
    t = t.replace(" ", "") if re.fullmatch(r"[-+]?\d[\d ,]*(\.\d+)?", t) else t
    if re.fullmatch(_NUM, t):
        try:
            return Fraction(t.replace(",", ""))
        except (ValueError, ZeroDivisionError):
            return None
    m = _FRAC_RE.match(t)
    if m:
        sign, num, den = (m.group(1), m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5), m.group(6))
        a, b = parse_number(num), parse_number(den)
        if a is None or b is None or b == 0:
            return None
        return (-1 if sign == "-" else 1) * a / b
    m = re.fullmatch(r"([-+]?\d+)\s*\\frac\s*\{(\d+)\}\s*\{(\d+)\}", t)
    if m:
        whole, num, den = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if den:
            frac = Fraction(num, den)
            return whole + frac if whole >= 0 else whole - frac
    m = _MIXED_RE.match(t)
    if m:
        whole, num, den = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if den:
            return whole + Fraction(num, den) if whole >= 0 else whole - Fraction(num, den)
    m = re.fullmatch(r"([-+]?\d+(?:\.\d+)?)\s*/\s*([-+]?\d+(?:\.\d+)?)", t)
    if m and Fraction(m.group(2)) != 0:
        return Fraction(m.group(1)) / Fraction(m.group(2))
    return None


def grade(pred: str | None, gold: str | None, rel_tol: float = 1e-6) -> bool | None:
    """True when ``pred`` matches ``gold`` (numerically if both are numbers); None when gold is None.

    Numbers compare exactly up to relative tolerance ``rel_tol``; a decimal with two or more
    digits also matches a fraction it rounds (``0.333`` vs ``\\frac{1}{3}``).
    """
    if gold is None:
        return None
    if pred is None:
        return False
    a, b = parse_number(pred), parse_number(gold)
    if a is not None and b is not None:
        if a == b:
            return True
        if abs(a - b) <= rel_tol * max(abs(a), abs(b)):
            return True
        # a rounded decimal against a non-terminating fraction: 0.333 == 1/3 to the digits given
        for dec, other, text in ((a, b, pred), (b, a, gold)):
            d = _decimals(text)
            if d >= 2 and not _decimals(pred if text is gold else gold) and other.denominator not in (1,):
                if abs(dec - other) <= Fraction(1, 2 * 10 ** d):
                    return True
        return False
    return normalize_answer(pred) == normalize_answer(gold)


def _decimals(text: str) -> int:
    m = re.search(r"\.(\d+)\s*\S*$", text.strip())
    return len(m.group(1)) if m and "/" not in text and "frac" not in text else 0


def _last_boxed(text: str) -> str | None:
    i = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if i < 0:
        return None
    j = text.index("{", i) + 1
    depth = 1
    for k in range(j, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[j:k]
    return None


def extract_answer(text: str | None, kind: str = "math") -> str | None:
    """Pull the final answer out of a completion.

    ``short``: the first word or number on the first non-empty line (few-token task answers).
    ``math``: the last ``\\boxed{…}``, else what follows ``answer is`` / ``####`` / ``Answer:``,
    else the last number in the text.
    """
    if text is None:
        return None
    if kind == "short":
        line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
        m = re.match(r"\s*(" + _NUM + r"|[^\s.,;:!?\"']+)", line)
        if not m:
            return None
        ans = m.group(1).strip()
        return ans.replace(",", "") if _NUM_RE.fullmatch(ans) else ans.lower()
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    m = None
    for pat in (r"answer is[:\s]*\$?([^\n$]+?)\$?(?:\.\s|\.$|\n|$)", r"####\s*([^\n]+)", r"Answer:\s*([^\n]+)"):
        found = re.findall(pat, text, flags=re.IGNORECASE)
        if found:
            m = found[-1].strip()
            break
    if m:
        return m.rstrip(".").strip()
    nums = _NUM_RE.findall(text)
    return nums[-1].replace(",", "") if nums else None


# ---------------------------------------------------------------------------------------------
# math-verify in worker processes
# ---------------------------------------------------------------------------------------------

def _mv_one(pair: tuple[str, str], timeout_s: int) -> bool | None:
    from math_verify import parse, verify

    pred, gold = pair
    try:
        g = parse(f"${gold}$" if "$" not in gold else gold, parsing_timeout=timeout_s)
        p = parse(f"${pred}$" if "$" not in pred else pred, parsing_timeout=timeout_s)
        return bool(verify(g, p, timeout_seconds=timeout_s))
    except Exception:  # math-verify raises on unparsable input or timeouts
        return None


def math_verify_grade(pairs: Sequence[tuple[str | None, str | None]], timeout_s: int = 5,
                      workers: int = 2) -> list[bool | None]:
    """Grade ``(pred, gold)`` pairs with math-verify in a process pool (never threads: it uses
    ``signal.alarm``). Items that time out or fail fall back to :func:`grade`.
    """
    try:
        import math_verify  # noqa: F401
    except ImportError:
        raise TtsplanError("math-verify grading must have the package installed, got none. "
                           "Install it with `pip install 'ttsplan[grading]'`.") from None
    import concurrent.futures as cf
    import multiprocessing as mp
    from functools import partial

    out: list[bool | None] = [None] * len(pairs)
    todo = [(i, (p, g)) for i, (p, g) in enumerate(pairs) if p is not None and g is not None]
    for i, (p, g) in enumerate(pairs):
        if p is None or g is None:
            out[i] = grade(p, g)
    if not todo:
        return out
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(partial(_mv_one, timeout_s=timeout_s), pair): i for i, pair in todo}
        for fut, i in futures.items():
            try:
                res = fut.result(timeout=timeout_s * 4 + 30)
            except Exception:
                res = None
            out[i] = res if res is not None else grade(*pairs[i])
    return out


__all__ = ["grade", "normalize_answer", "parse_number", "extract_answer", "math_verify_grade"]
