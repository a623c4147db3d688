"""Counting the digits a value can be vouched for, and raising precision until it can.

Two words, kept apart everywhere: *certified* digits come from ball arithmetic (the ball
contains the true value); *verified* digits from two independent runs that agree.
"""
import math

import flint
import mpmath

from ..errors import ExactdynError, PrecisionError
from ..numbers import bits_for_digits


def certify(fn, digits, *, balls=lambda result: result, start_bits=None, max_bits=1 << 22):
    """fn(bits) called with doubling precision until every ball of ``balls(fn(bits))`` pins down
    `digits` significant digits (one more than printed, so rounding cannot flip the last).

    In the manner of python-flint's ``good()``: fail loudly (PrecisionError) past `max_bits`.
    fn may itself raise PrecisionError to ask for more bits.  Returns (fn's result, bits).
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ExactdynError(f"digits must be a whole number >= 1, got {digits!r}")
    need = (digits + 1) * math.log2(10)
    bits = start_bits or bits_for_digits(digits)
    while bits <= max_bits:
        try:
            result = fn(bits)
            if all(b.is_finite() and b.rel_accuracy_bits() >= need for b in balls(result)):
                return result, bits
        except PrecisionError:
            pass
        bits *= 2
    raise PrecisionError(f"{digits} digits could not be certified within {max_bits} bits")


def agreed_digits(value, check, cap):
    """Significant digits on which two runs agree (relative), at most `cap`; 0 where they do not.

    Exact agreement counts as `cap`.  Works for floats and mpmath numbers alike."""
    value, check = mpmath.mpf(value), mpmath.mpf(check)
    if value == check:
        return cap
    scale = abs(check)
    if scale == 0 or not (mpmath.isfinite(value) and mpmath.isfinite(check)):
        return 0
    gap = abs(value - check) / scale
    return max(0, min(cap, int(math.floor(-float(mpmath.log10(gap))))))


def ball_digits(ball):
    """Certified significant digits of an arb ball (0 when it does not pin the sign down)."""
    if isinstance(ball, flint.fmpq):
        return None
    if ball.is_exact():
        return None
    return max(0, int(ball.rel_accuracy_bits() / math.log2(10)) - 1)
