"""Working precision as an explicit, scoped argument (never a global left behind)."""
from contextlib import contextmanager
import math

import flint
import mpmath

from .errors import ExactdynError

GUARD_BITS = 20


def bits_for_digits(digits):
    return int(math.ceil(digits * math.log2(10))) + GUARD_BITS


@contextmanager
def working_precision(bits):
    """Set flint's and mpmath's precision to `bits` for the block, restoring both on exit."""
    if not isinstance(bits, int) or bits < 2:
        raise ExactdynError(f"precision must be an integer number of bits >= 2, got {bits!r}")
    with flint.ctx.workprec(bits), mpmath.workprec(bits):
        yield
