"""Input spectra: eigenvalues with multiplicities, exact (fmpq) or certified balls (arb).

A spectrum is stored as ``scale * base[l]``: for a power law the base values are
``l^-(1+beta)`` and only the scale ``lambda_+`` is a large number, which keeps the exact
traces and the minimal polynomial cheap to form.
"""
from dataclasses import dataclass
import math

import flint

from .errors import ExactdynError
from .numbers import to_fraction, to_fmpq
from .numbers import working_precision

MAX_L = 1_000_000
MAX_PREC = 1 << 17
MAX_BETA = 1000
# Refused up front: requests estimated to run longer than this (the estimates are within a factor ~3)
MAX_SECONDS = 60.0
# seconds per L^2 of forming an exact power law (summing L fractions; 3.6 s at L = 1e5, 2 cores)
_EXACT_BUILD = 3.6e-10
# seconds per L * kmax^2 * bit of the base values' denominators, exact traces (25 s at L = 400, kmax = 401)
_EXACT_TRACES = 5.5e-11
# seconds per L * kmax of ball traces (one multiplication and addition each, from Python)
_BALL_TRACES = 1e-6


def sequence(values, name):
    """A list from a list, tuple or other sized iterable, never from a string (read digit by digit)."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__") or not hasattr(values, "__len__"):
        raise ExactdynError(f"{name} must be a list of numbers, got {type(values).__name__} {str(values)[:30]!r}")
    if len(values) > MAX_L:
        raise ExactdynError(f"{name} holds {len(values)} values, at most {MAX_L} are allowed")
    return list(values)


def check_power_law_traces(L, beta, kmax):
    """Refuse, before anything is built, exact power-law traces to order kmax that would take too long."""
    _check_L(L)
    b = to_fraction(beta, "beta")
    if b.denominator == 1 and -1 < b <= MAX_BETA:
        bits = (1 + int(b)) * L * max(1.0, math.log2(L / math.e))
        seconds = _EXACT_BUILD * L * L * (1 + int(b)) / 2 + _EXACT_TRACES * L * kmax ** 2 * bits
    else:
        seconds = _BALL_TRACES * L * kmax
    _refuse_slow(seconds, f"power-law traces to order {kmax} at L = {L}", "ask for fewer traces or a smaller L")


def _refuse_slow(seconds, what, advice):
    if seconds > MAX_SECONDS:
        raise ExactdynError(f"{what} would take about {seconds:.2g} s (estimated; limit {MAX_SECONDS:g} s): {advice}")


def _check_L(L):
    if isinstance(L, bool) or not isinstance(L, int):
        raise ExactdynError(f"L must be a whole number, got {L!r}")
    if L < 1:
        raise ExactdynError(f"L must be at least 1, got {L}")
    if L > MAX_L:
        raise ExactdynError(f"L must be at most {MAX_L}, got {L}")


def _product_tree(factors):
    """Product of polynomials, balanced so the operands stay of similar size."""
    while len(factors) > 1:
        factors = [factors[i] * factors[i + 1] if i + 1 < len(factors) else factors[i]
                   for i in range(0, len(factors), 2)]
    return factors[0]


@dataclass(frozen=True)
class Spectrum:
    """Distinct eigenvalues ``scale*base[l]`` (descending), each on a fraction ``weights[l]`` of
    the input dimensions.  ``prec`` is None for an exact spectrum, else the bits of its balls."""

    scale: object
    base: tuple
    weights: tuple
    prec: object = None
    label: str = "custom"

    @property
    def exact(self):
        return self.prec is None

    @property
    def L(self):
        return len(self.base)

    def _scope(self):
        return working_precision(self.prec if self.prec else 64)

    @property
    def eigenvalues(self):
        with self._scope():
            return tuple(self.scale * b for b in self.base)

    def floats(self):
        """(eigenvalues, weights) as float64 lists (midpoints of balls), for brackets and simulations."""
        to_float = lambda x: float(x) if isinstance(x, flint.fmpq) else float(x.mid())
        with self._scope():
            return [to_float(x) for x in self.eigenvalues], [to_float(w) for w in self.weights]

    def as_balls(self, prec):
        """The same spectrum as balls at `prec` bits (fast approximate traces and polynomial)."""
        if self.prec is not None and self.prec < prec:
            raise ExactdynError(f"this spectrum has {self.prec}-bit balls, {prec} bits were asked for")
        with working_precision(prec):
            ball = lambda x: flint.arb(x) + 0
            return Spectrum(ball(self.scale), tuple(ball(b) for b in self.base),
                            tuple(ball(w) for w in self.weights), prec, self.label)

    def _integer_form(self):
        """Exact base values as integers a_l / D and weights as integers omega_l / W."""
        D = flint.fmpz(1)
        for b in self.base:
            D = D.lcm(b.q)
        W = flint.fmpz(1)
        for w in self.weights:
            W = W.lcm(w.q)
        a = [b.p * (D // b.q) for b in self.base]
        omega = [w.p * (W // w.q) for w in self.weights]
        return a, D, omega, W

    def trace(self, k):
        """tau_k = Tr(Sigma^k)/N = sum_l weights[l] * lambda_l^k."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ExactdynError(f"trace order must be a whole number >= 0, got {k!r}")
        return self.traces(k)[-1] if k else self.traces(0, include_zero=True)[0]

    def traces(self, kmax, *, include_zero=False):
        """(tau_1, ..., tau_kmax), or (tau_0, ..., tau_kmax) with include_zero."""
        if isinstance(kmax, bool) or not isinstance(kmax, int) or kmax < 0:
            raise ExactdynError(f"trace order must be a whole number >= 0, got {kmax!r}")
        bits = sum(int(b.q).bit_length() for b in self.base) + int(self.scale.p).bit_length() if self.exact else 0
        seconds = _EXACT_TRACES * self.L * kmax ** 2 * bits if self.exact else _BALL_TRACES * self.L * kmax
        _refuse_slow(seconds, f"traces to order {kmax} at L = {self.L}", "ask for fewer traces or a smaller L")
        out = []
        with self._scope():
            if self.exact:
                # Sum integers and divide once: adding L fractions with unrelated denominators is slow.
                a, D, omega, W = self._integer_form()
                powers, Dk, sk = list(omega), flint.fmpz(1), flint.fmpq(1)
                for k in range(kmax + 1):
                    out.append(sk * flint.fmpq(sum(powers, flint.fmpz(0)), W * Dk))
                    powers = [p * x for p, x in zip(powers, a)]
                    Dk *= D
                    sk *= self.scale
            else:
                powers, sk = list(self.weights), flint.arb(1)
                for k in range(kmax + 1):
                    out.append(sk * sum(powers, flint.arb(0)))
                    powers = [p * x for p, x in zip(powers, self.base)]
                    sk *= self.scale
        return tuple(out) if include_zero else tuple(out[1:])

    def coefficients(self):
        """(c_0, ..., c_{L-1}) of the minimal polynomial z^L + sum_j c_j z^j = prod_l (z - lambda_l)."""
        with self._scope():
            if self.exact:
                monic = _product_tree([flint.fmpq_poly([-b, 1]) for b in self.base])
            else:
                monic = flint.arb_poly.from_roots(list(self.base))
            coeffs = monic.coeffs()
            L = self.L
            return tuple(coeffs[j] * self.scale ** (L - j) for j in range(L))

    def minimal_polynomial(self):
        """The monic minimal polynomial as an fmpq_poly (exact) or arb_poly."""
        coeffs = list(self.coefficients())
        with self._scope():
            if self.exact:
                return flint.fmpq_poly(coeffs + [1])
            return flint.arb_poly(coeffs + [flint.arb(1)])

    def companion_matrix(self):
        """C with C[i][i+1] = 1 and last row -c_j; its eigenvector for lambda is (1, lambda, ..., lambda^{L-1})."""
        c = self.coefficients()
        L = self.L
        with self._scope():
            zero, one = (flint.fmpq(0), flint.fmpq(1)) if self.exact else (flint.arb(0), flint.arb(1))
            rows = [[one if j == i + 1 else zero for j in range(L)] for i in range(L - 1)]
            rows.append([-cj for cj in c])
            return flint.fmpq_mat(rows) if self.exact else flint.arb_mat(rows)


def power_law(L, beta, *, prec=None):
    """lambda_l = lambda_+ l^-(1+beta), l = 1..L, normalised so that the mean eigenvalue is 1.

    Exact for whole-number beta; otherwise balls at ``prec`` bits (required then).
    """
    _check_L(L)
    b = to_fraction(beta, "beta")
    if b <= -1:
        raise ExactdynError(f"beta must be greater than -1, got {beta}")
    if b > MAX_BETA:
        raise ExactdynError(f"beta must be at most {MAX_BETA}, got {beta}")
    if prec is not None and (isinstance(prec, bool) or not isinstance(prec, int) or not 2 <= prec <= MAX_PREC):
        raise ExactdynError(f"prec must be a whole number of bits from 2 to {MAX_PREC}, got {prec!r}")
    if b.denominator == 1:
        _refuse_slow(_EXACT_BUILD * L * L * (1 + int(b)) / 2, f"an exact power law with L = {L}", "use a smaller L")
    weights = tuple(flint.fmpq(1, L) for _ in range(L))
    if b.denominator == 1:
        p = int(b) + 1
        base = tuple(flint.fmpq(1, l ** p) for l in range(1, L + 1))
        scale = flint.fmpq(L) / sum(base, flint.fmpq(0))
        return Spectrum(scale, base, weights, None, f"power law L={L}, beta={b}")
    if prec is None:
        raise ExactdynError(f"beta = {b} gives irrational eigenvalues: give a precision (bits)")
    with working_precision(prec):
        expo = -flint.arb(flint.fmpq(b.numerator + b.denominator, b.denominator))
        base = tuple(flint.arb(l) ** expo for l in range(1, L + 1))
        scale = flint.arb(L) / sum(base, flint.arb(0))
    return Spectrum(scale, base, weights, prec, f"power law L={L}, beta={b}")


def from_eigenvalues(eigenvalues, weights=None):
    """An exact spectrum from distinct positive eigenvalues and the fraction of dimensions of each
    (equal fractions when omitted).  Values may be ints, decimal or 'p/q' strings, or Fractions."""
    lam = [to_fmpq(x, "eigenvalue") for x in sequence(eigenvalues, "eigenvalues")]
    if not lam:
        raise ExactdynError("a spectrum needs at least one eigenvalue")
    _check_L(len(lam))
    if any(x <= 0 for x in lam):
        raise ExactdynError("eigenvalues must be positive")
    if len(set(lam)) != len(lam):
        raise ExactdynError("eigenvalues must be distinct (give multiplicities through weights)")
    if weights is None:
        w = [flint.fmpq(1, len(lam))] * len(lam)
    else:
        w = [to_fmpq(x, "weight") for x in sequence(weights, "weights")]
        if len(w) != len(lam):
            raise ExactdynError(f"{len(w)} weights for {len(lam)} eigenvalues")
        if any(x <= 0 for x in w):
            raise ExactdynError("weights must be positive")
        if sum(w, flint.fmpq(0)) != 1:
            raise ExactdynError("weights (fractions of the input dimension) must sum to 1")
    order = sorted(range(len(lam)), key=lambda i: lam[i], reverse=True)
    return Spectrum(flint.fmpq(1), tuple(lam[i] for i in order), tuple(w[i] for i in order),
                    None, f"custom L={len(lam)}")


def isotropic():
    """Sigma = I: one eigenvalue 1 on all dimensions."""
    return Spectrum(flint.fmpq(1), (flint.fmpq(1),), (flint.fmpq(1),), None, "isotropic")
