"""The symmetric plateau of a committee machine: fixed point, linearisation, escape rate.

On the plateau every student unit is the same: r^k_in = x_k, q^k_ii = y_k, q^k_ij = z_k (i != j)
for a permutation-symmetric teacher (t^k with equal diagonals and equal off-diagonals).  That
subspace is invariant; inside it the plateau is a fixed point, found here by Newton's method at
mpmath precision on the derived eigenmode right-hand sides (no approximation of the teacher
overlaps).  Its Jacobian in the full state space, by central differences at three times the working
precision, has positive eigenvalues along the symmetry-breaking directions: the largest is the
escape rate, and a deviation d0 from the plateau needs about ln(1/d0)/rate to grow to order one.
"""
from dataclasses import dataclass

import mpmath
import numpy as np

from .cache import derive
from .committee import integrate
from .compiled import compile_system
from .errors import ExactdynError, PrecisionError
from .exact import to_fraction
from .overlaps import assign, overlap_table
from .precision import bits_for_digits, working_precision


@dataclass(frozen=True)
class Plateau:
    """Fixed point (per group: x_k, y_k, z_k), eps_g there, the Jacobian's eigenvalues (descending
    real parts), the escape rate (largest real part), all as mpf/mpc at `digits` digits."""

    x: tuple
    y: tuple
    z: tuple
    eps_g: object
    eigenvalues: tuple
    escape_rate: object
    digits: int
    bits: int
    residual: object

    def escape_time(self, deviation):
        """alpha for a symmetry-breaking deviation `deviation` to grow by 1/deviation (to order one)."""
        d = to_fraction(deviation, "deviation")
        with mpmath.workprec(self.bits):
            return mpmath.log(mpmath.mpf(d.denominator) / d.numerator) / self.escape_rate


def _as_mpf(v):
    """An mpf at the working precision: floats exactly as stored, rationals divided out."""
    return mpmath.mpf(v) if not hasattr(v, "numerator") else mpmath.mpf(v.numerator) / v.denominator


def _symmetric(teacher, M):
    for k, t in enumerate(teacher):
        t = np.asarray(t, float)
        diag, off = np.diag(t), t[~np.eye(M, dtype=bool)]
        if np.ptp(diag) > 1e-12 or (off.size and np.ptp(off) > 1e-12):
            raise ExactdynError(f"t[{k}] is not permutation symmetric: the symmetric plateau needs equal teacher "
                                "norms and equal teacher-teacher overlaps in each group")


def find_plateau(structure, lam, frac, t, eta, *, digits=30, guess_alpha=400.0):
    """The symmetric plateau of `structure` (eigenmode system) for teacher overlaps `t` (per group,
    M x M, permutation symmetric), eigenvalues `lam` and fractions `frac` (floats or exact)."""
    K, M, L = structure.K, structure.M, structure.L
    if K < 2:
        raise ExactdynError("a plateau of specialisation needs K >= 2 students")
    _symmetric(t, M)
    system = derive(structure, "mode")
    f = compile_system(system, "mpmath")
    names = [str(s) for s in system.states]
    # a guess from float64: a symmetric start stays symmetric and settles on the plateau
    r0 = [[[0.01 * fr] * M for _ in range(K)] for fr in frac]
    q0 = [(0.1 * fr * np.eye(K)).tolist() for fr in frac]
    run = integrate(structure, (list(lam), list(frac), r0, q0, [np.asarray(x, float).tolist() for x in t], L),
                    float(eta), [0.0, guess_alpha], verify=False)
    end = run.overlaps[-1]
    guess = []
    for k in range(1, L + 1):
        guess += [end[f"r{k}_1_1"], end[f"q{k}_1_1"], end[f"q{k}_1_2"]]
    bits = bits_for_digits(digits) + 32
    with working_precision(bits):
        blocks = [[[_as_mpf(x) for x in row] for row in np.asarray(tk, dtype=object).tolist()] for tk in t]
        base = overlap_table([_as_mpf(x) for x in lam], [_as_mpf(x) for x in frac],
                             [[[mpmath.mpf(0)] * M for _ in range(K)] for _ in range(L)],
                             [[[mpmath.mpf(0)] * K for _ in range(K)] for _ in range(L)], blocks, _as_mpf(eta))
        _, params = assign(system, base)
        index = {n: i for i, n in enumerate(names)}

        def state(v):
            y = [mpmath.mpf(0)] * len(names)
            for k in range(L):
                x_, d_, o_ = v[3 * k: 3 * k + 3]
                for i in range(1, K + 1):
                    for n in range(1, M + 1):
                        y[index[f"r{k + 1}_{i}_{n}"]] = x_
                    for j in range(i, K + 1):
                        y[index[f"q{k + 1}_{i}_{j}"]] = d_ if i == j else o_
            return y

        def reduced(*v):
            d = f.rhs(state(v), params)
            out = []
            for k in range(1, L + 1):
                out += [d[index[f"r{k}_1_1"]], d[index[f"q{k}_1_1"]], d[index[f"q{k}_1_2"]]]
            return out

        try:
            root = mpmath.findroot(reduced, [mpmath.mpf(g) for g in guess], tol=mpmath.mpf(2) ** (-2 * bits + 40),
                                   maxsteps=200)
        except (ValueError, ZeroDivisionError) as exc:
            raise PrecisionError(f"Newton's method did not converge on the plateau: {exc}") from None
        root = [root[i] for i in range(len(guess))]
        y_star = state(root)
        residual = max(abs(v) for v in f.rhs(y_star, params))
        if residual > mpmath.mpf(10) ** -digits:
            raise PrecisionError(f"the plateau residual {mpmath.nstr(residual, 3)} exceeds 1e-{digits}")
        jac = _jacobian(lambda y: f.rhs(y, params), y_star, bits)
        eig = mpmath.eig(mpmath.matrix(jac), left=False, right=False)
        eig = sorted(eig, key=lambda e: -mpmath.re(e))
        rate = mpmath.re(eig[0])
        eps = f.eps_g(y_star, params)
    return Plateau(tuple(root[0::3]), tuple(root[1::3]), tuple(root[2::3]), eps, tuple(eig), rate, digits, bits,
                   residual)


def _jacobian(rhs, y, bits):
    """Central differences with step 2^-bits at three times the precision: truncation ~ 2^(-2 bits),
    cancellation costs `bits` of the 3 bits, so about `bits` bits of each entry survive."""
    with working_precision(3 * bits):
        h = mpmath.mpf(2) ** (-bits)
        cols = []
        for j in range(len(y)):
            up, down = list(y), list(y)
            up[j] += h
            down[j] -= h
            cols.append([(a - b) / (2 * h) for a, b in zip(rhs(up), rhs(down))])
    return [[cols[j][i] for j in range(len(y))] for i in range(len(y))]


@dataclass(frozen=True)
class LateTime:
    """The linearisation at the specialised fixed point (student i = teacher i: r^k = q^k = t^k,
    zero error, K = M): the Jacobian's eigenvalues (descending real parts; all negative when the
    point attracts).  eps_g is quadratic in the deviation there, so it decays as a weighted sum of
    exp((mu_a + mu_b) alpha), led at late times by exp(2 mu_slowest alpha)."""

    eigenvalues: tuple
    slowest: object
    fastest: object
    slowest_vector: tuple  # right eigenvector of the slowest mode, ordered as the system's states
    states: tuple          # names of the states
    digits: int
    bits: int


def late_time_linearisation(structure, lam, frac, t, eta, *, digits=20):
    K, M = structure.K, structure.M
    if K != M:
        raise ExactdynError("the specialised fixed point r = q = t needs K = M")
    system = derive(structure, "mode")
    f = compile_system(system, "mpmath")
    bits = bits_for_digits(digits) + 32
    with working_precision(bits):
        blocks = [[[_as_mpf(x) for x in row] for row in np.asarray(tk, dtype=object).tolist()] for tk in t]
        table = overlap_table([_as_mpf(x) for x in lam], [_as_mpf(x) for x in frac], blocks, blocks, blocks, _as_mpf(eta))
        y_star, params = assign(system, table)
        residual = max(abs(v) for v in f.rhs(y_star, params))
        if residual > mpmath.mpf(10) ** -digits:
            raise PrecisionError("r = q = t is not a fixed point of this system")
        eig, vectors = mpmath.eig(mpmath.matrix(_jacobian(lambda y: f.rhs(y, params), y_star, bits)), left=False)
        order = sorted(range(len(eig)), key=lambda i: -mpmath.re(eig[i]))
        slow = [mpmath.re(vectors[j, order[0]]) for j in range(len(eig))]
    return LateTime(tuple(eig[i] for i in order), mpmath.re(eig[order[0]]), mpmath.re(eig[order[-1]]), tuple(slow),
                    tuple(str(s) for s in system.states), digits, bits)
