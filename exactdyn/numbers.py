"""Exact reading of user numbers and working precision: the bottom layer every other module uses.

User numbers (decimal strings, ints, p/q) become rationals, never floats; precision is an explicit,
scoped argument (never a global left behind).
"""
from contextlib import contextmanager
from fractions import Fraction
import math
import re
import sys

import flint
import mpmath
import sympy as sp

from .errors import ExactdynError

_DECIMAL = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_RATIO = re.compile(r"^[+-]?[0-9]+/[0-9]+$")
# A user number must fit in float range (the numeric layer rounds to it) and stay small as an exact
# rational: '1e999999999' would otherwise become a billion-digit integer before any check.
MAX_TEXT = 1000
MAX_EXPONENT = 400
MAX_BITS = 1 << 16
MAX_MAGNITUDE = Fraction(sys.float_info.max)


def _bounded(frac, name, value):
    if abs(frac) > MAX_MAGNITUDE:
        raise ExactdynError(f"{name} is too large (beyond the float range): {str(value)[:40]!r}")
    if frac.numerator.bit_length() > MAX_BITS or frac.denominator.bit_length() > MAX_BITS:
        raise ExactdynError(f"{name} has too many digits (at most {MAX_BITS} bits per numerator and denominator)")
    return frac


def _from_text(value, name):
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise ExactdynError(f"{name} is longer than {MAX_TEXT} characters")
    if _DECIMAL.match(text):
        mantissa, _, exponent = text.lower().partition("e")
        if exponent and abs(int(exponent)) > MAX_EXPONENT:
            raise ExactdynError(f"{name} has a decimal exponent beyond +-{MAX_EXPONENT}: {text[:40]!r}")
        return Fraction(text)
    if _RATIO.match(text):
        num, den = text.split("/")
        if int(den) == 0:
            raise ExactdynError(f"{name} has a zero denominator: {value!r}")
        return Fraction(int(num), int(den))
    raise ExactdynError(f"{name} must be a number (decimal or p/q), got {text[:40]!r}")


def to_fraction(value, name="value"):
    """An exact Fraction from an int, Fraction, fmpq, decimal or 'p/q' string, or float, of at most
    float magnitude and MAX_BITS bits.  A float is read as its shortest decimal (0.1 means 1/10).
    """
    return _bounded(_exact_fraction(value, name), name, value)


def _exact_fraction(value, name):
    if isinstance(value, bool):
        raise ExactdynError(f"{name} must be a number, not {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, flint.fmpq):
        return Fraction(int(value.p), int(value.q))
    if isinstance(value, sp.Rational):
        return Fraction(int(value.p), int(value.q))
    if isinstance(value, flint.fmpz):
        return Fraction(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExactdynError(f"{name} must be finite, got {value!r}")
        return Fraction(repr(float(value)))  # numpy floats print their type in repr
    if isinstance(value, str):
        return _from_text(value, name)
    raise ExactdynError(f"{name} must be a number, got {type(value).__name__}")


def to_fmpq(value, name="value"):
    frac = to_fraction(value, name)
    return flint.fmpq(frac.numerator, frac.denominator)


def fmpq_str(q):
    """'p/q' (or 'p' for integers) of an exact rational."""
    return str(q.p) if q.q == 1 else f"{q.p}/{q.q}"


def certified_decimal(x, digits):
    """`digits` significant digits of the ball `x`, all of them certified, else PrecisionError.

    The ball must pin down one more digit than is printed, so that rounding cannot flip the last one.
    """
    from .errors import PrecisionError

    if isinstance(x, flint.fmpq):
        x = flint.arb(x)
    if x.is_exact() and x.is_zero():
        return "0"
    need = (digits + 1) * math.log2(10)
    if not x.is_finite() or x.rel_accuracy_bits() < need:
        got = max(0, int(x.rel_accuracy_bits() / math.log2(10)) - 1) if x.is_finite() else 0
        raise PrecisionError(f"only {got} digits can be certified, {digits} were asked for")
    return x.str(digits, radius=False)

GUARD_BITS = 20
MAX_PRECISION = 1 << 20


def bits_for_digits(digits):
    return int(math.ceil(digits * math.log2(10))) + GUARD_BITS


@contextmanager
def working_precision(bits):
    """Set flint's and mpmath's precision to `bits` for the block, restoring both on exit."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= MAX_PRECISION:
        raise ExactdynError(f"precision must be a whole number of bits from 2 to {MAX_PRECISION}, got {bits!r}")
    with flint.ctx.workprec(bits), mpmath.workprec(bits):
        yield
