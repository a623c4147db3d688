"""Late times of a committee machine with K = M, near the specialised zero-error point.

There student i has learnt teacher i: r^k = q^k = t^k.  `late_time_linearisation` gives the
Jacobian's spectrum there; `late_time_expansion` writes eps_g from a late state as a weighted sum
of exponentials, to second order in the deviation; `first_below` finds that state.  The
derivatives are exact (heyoka's, of the derived eigenmode system, evaluated in MPFR); spectrum,
eta and teacher go in exact and are rounded once, at the working precision.  The rates are
*verified*: the linearisation is redone at 64 more bits and each rate carries the digits on which
both agree.  The weights carry the working precision's digits, but the expansion itself is only
as good as its truncation (third order in the deviation): check it against the ODE, as the CLI
does at alpha0.
"""
from dataclasses import dataclass
from fractions import Fraction
from itertools import permutations

import mpmath

from ..errors import ExactdynError, PrecisionError
from ..numbers import bits_for_digits, to_fraction, working_precision
from ..problem import InitialState, Problem, exact
from ..symbolic.cache import derive
from . import engine
from .overlaps import assign, overlap_table
from .plateau import CHECK_BITS, complex_digits, matched_digits, teacher_overlaps


@dataclass(frozen=True)
class LateTime:
    """The linearisation at the specialised fixed point (r^k = q^k = t^k, zero error, K = M): the
    Jacobian's eigenvalues (descending real parts; all negative when the point attracts) with
    their verified digits.  eps_g is quadratic in the deviation there, so it decays as a weighted
    sum of exp((mu_a + mu_b) alpha), led at late times by exp(2 mu_slowest alpha)."""

    eigenvalues: tuple
    slowest: object
    fastest: object
    slowest_vector: tuple  # right eigenvector of the slowest mode, ordered as the system's states
    states: tuple          # names of the states
    digits: int
    bits: int
    eigenvalue_digits: tuple = ()


@dataclass(frozen=True)
class LateTimeExpansion:
    """eps_g(alpha) = sum_j weights[j] exp(rates[j] (alpha - alpha0)) near the specialised point, to
    second order in the deviation at alpha0: the rates are the Jacobian's eigenvalues mu_a (weighted
    by eps_g's gradient) and their pairwise sums mu_a + mu_b (from eps_g's curvature and the
    equations' own second-order response).  ``first_order_at`` keeps only the former, a
    first-order Taylor expansion of eps_g in the deviation.  ``rate_digits``: verified digits of
    each rate."""

    alpha0: object
    rates: tuple
    weights: tuple
    first_order_count: int  # the first rates/weights are the first-order terms
    permutation: tuple      # student i was relabelled to teacher permutation[i]
    bits: int
    rate_digits: tuple = ()

    def _sum(self, alpha, terms):
        with mpmath.workprec(self.bits):
            s = _mpf(exact(alpha)) - _mpf(exact(self.alpha0))
            return mpmath.re(mpmath.fsum(w * mpmath.exp(r * s) for r, w in terms))

    def eps_at(self, alpha):
        return self._sum(alpha, zip(self.rates, self.weights))

    def first_order_at(self, alpha):
        n = self.first_order_count
        return self._sum(alpha, zip(self.rates[:n], self.weights[:n]))

    def digits_at(self, alpha):
        """The digits of eps_at(alpha) that the rates' verified digits allow: a rate off by
        10^-d relative moves exp(rate (alpha - alpha0)) by |rate (alpha - alpha0)| 10^-d."""
        with mpmath.workprec(self.bits):
            s = abs(_mpf(exact(alpha)) - _mpf(exact(self.alpha0)))
            lost = lambda r: int(mpmath.ceil(mpmath.log10(1 + abs(r) * s)))
            return max(0, min(d - lost(r) for r, d in zip(self.rates, self.rate_digits)))

    def truncation_digits(self, eps0):
        """The digits the expansion vouches for against eps_g = eps0 at alpha0 from the ODE: its
        third-order remainder shows as the mismatch there (with a margin of 3)."""
        with mpmath.workprec(self.bits):
            mismatch = abs(self.eps_at(self.alpha0) / _mpf(exact(eps0)) - 1)
            digits = int(mpmath.floor(-mpmath.log10(3 * mismatch))) if mismatch > 0 else mpmath.inf
            return max(0, min(digits, min(self.rate_digits))), mismatch

    def leading(self, count=5):
        """The `count` slowest-decaying terms as (rate, weight): terms with equal rates merged,
        imaginary parts at round-off level dropped, weights that vanish to the working precision
        left out (eps_g's gradient cancels exactly on some modes)."""
        with mpmath.workprec(self.bits):
            tiny = mpmath.mpf(2) ** (40 - self.bits)
            merged = []
            for j in sorted(range(len(self.rates)), key=lambda j: -mpmath.re(self.rates[j])):
                rate, weight = self.rates[j], self.weights[j]
                if merged and abs(rate - merged[-1][0]) <= tiny * abs(rate):
                    merged[-1][1] += weight
                else:
                    merged.append([rate, weight])
            floor = max(abs(w) for _, w in merged) * tiny
            real = lambda z: mpmath.re(z) if abs(mpmath.im(z)) <= tiny * abs(z) else z
            return [(real(r), real(w)) for r, w in merged if abs(w) > floor][:count]

    def leading_digits(self, count=5):
        """The verified digits of the rates of `leading(count)`, in the same order."""
        with mpmath.workprec(self.bits):
            nearest = lambda r: min(range(len(self.rates)), key=lambda j: abs(self.rates[j] - r))
            return [self.rate_digits[nearest(r)] for r, _ in self.leading(count)]


def _mpf(x):
    """An exact Fraction as mpf at the working precision (rounded once)."""
    return mpmath.mpf(x.numerator) / x.denominator


def _check_request(problem, digits):
    if not isinstance(problem, Problem):
        raise ExactdynError("late times need an exactdyn Problem")
    if problem.K != problem.M:
        raise ExactdynError("the specialised fixed point r = q = t needs K = M")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 1000:
        raise ExactdynError(f"digits must be a whole number from 1 to 1000, got {digits!r}")


def _specialised(problem, teacher, bits):
    """(system, evaluator at `bits`, y* = (r = q = t) as mpf) of the eigenmode system."""
    system = derive(problem.structure, "mode")
    spec = problem.spectrum
    table = overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights],
                          teacher, teacher, teacher, problem.eta)
    y_star, params = assign(system, table)
    evaluator = engine.RealEvaluator(engine.compile_system(system), params, bits)
    with working_precision(bits):
        return system, evaluator, [_mpf(v) for v in y_star]


def _jacobian_at(evaluator, y_star, digits):
    """(Jacobian rows, eps_g's gradient) at y*, after checking that y* is a fixed point."""
    with working_precision(evaluator.bits):
        f, _, jac, grad = evaluator.values(y_star)
        if max(abs(v) for v in f) > mpmath.mpf(10) ** -digits:
            raise PrecisionError("r = q = t is not a fixed point of this system")
    return jac, grad


def _checked_rates(problem, teacher, digits, bits, values):
    """The verified digits of `values` (eigenvalues at `bits`): agreement with a run at 64 more."""
    _, check, y_star = _specialised(problem, teacher, bits + CHECK_BITS)
    rerun = engine.eigensystem(_jacobian_at(check, y_star, digits)[0], bits + CHECK_BITS)
    with working_precision(bits + CHECK_BITS):
        return rerun, matched_digits(rerun, values, digits)


def late_time_linearisation(problem, teacher=None, *, digits=20):
    """The Jacobian's spectrum at the specialised point r = q = t (teacher default rho_k I)."""
    _check_request(problem, digits)
    t = teacher_overlaps(problem, teacher)
    bits = bits_for_digits(digits) + 32
    system, evaluator, y_star = _specialised(problem, t, bits)
    mu, vectors = engine.eigensystem(_jacobian_at(evaluator, y_star, digits)[0], bits, vectors=True)
    agreed = _checked_rates(problem, t, digits, bits, mu)[1]
    with working_precision(bits):
        slow = [mpmath.re(vectors[j, 0]) for j in range(len(mu))]
        return LateTime(tuple(mu), mpmath.re(mu[0]), mpmath.re(mu[-1]), tuple(slow),
                        tuple(str(s) for s in system.states), digits, bits, agreed)


def specialisation_permutation(overlaps, K, L):
    """The teacher each student has specialised to (largest summed r^k_in), as a permutation tuple."""
    score = lambda p: sum(overlaps[f"r{k}_{i + 1}_{p[i] + 1}"] for k in range(1, L + 1) for i in range(K))
    return max(permutations(range(K)), key=score)


def _exact_value(v):
    """A state value as an exact Fraction (an mpf or float by its binary value)."""
    if isinstance(v, mpmath.mpf):
        mantissa, exponent = engine.signed_man_exp(v)
        return Fraction(mantissa) * Fraction(2) ** exponent
    return exact(v)


def _state(problem, initial_or_overlaps, teacher):
    """(state name -> exact value, teacher) from an InitialState (its own teacher) or a mapping of
    state names to values (with `teacher`, default rho_k I)."""
    if isinstance(initial_or_overlaps, InitialState):
        s = initial_or_overlaps
        s.check_fits(problem)
        values = {}
        for k in range(s.L):
            for i in range(s.K):
                values.update({f"r{k + 1}_{i + 1}_{n + 1}": s.r[k][i][n] for n in range(s.M)})
                values.update({f"q{k + 1}_{i + 1}_{j + 1}": s.q[k][i][j] for j in range(i, s.K)})
        return values, s.t
    if not isinstance(initial_or_overlaps, dict):
        raise ExactdynError("give the late state as an InitialState or a dict of state names to values")
    return initial_or_overlaps, teacher_overlaps(problem, teacher)


def _relabelled(state, names, problem):
    """The state's values in the system's order, students relabelled by the teacher each learnt."""
    missing = [n for n in names if n not in state]
    if missing:
        raise ExactdynError(f"the state has no {', '.join(missing[:3])}: give the overlaps of a {problem.K} x "
                            f"{problem.K}, L = {problem.L} run")
    K, L = problem.K, problem.L
    perm = specialisation_permutation(state, K, L)
    relabel = {}
    for k in range(1, L + 1):
        for i in range(K):
            relabel.update({f"r{k}_{perm[i] + 1}_{n}": state[f"r{k}_{i + 1}_{n}"] for n in range(1, K + 1)})
            for j in range(i, K):
                a, b = sorted((perm[i], perm[j]))
                relabel[f"q{k}_{a + 1}_{b + 1}"] = state[f"q{k}_{i + 1}_{j + 1}"]
    return [_exact_value(relabel[n]) for n in names], perm


def _modes(mu, V, bits):
    """Eigenpairs whose imaginary parts are round-off made real (a real pair costs one second
    derivative instead of four), columns scaled to unit max (so that the coordinates below are
    deviation amplitudes), and the inverse of the eigenvector matrix."""
    tiny = mpmath.mpf(2) ** (24 - bits)
    mu, V, n = list(mu), V.copy(), len(mu)
    for a in range(n):
        column = [V[j, a] for j in range(n)]
        scale = max(abs(x) for x in column)
        real = abs(mpmath.im(mu[a])) <= tiny * abs(mu[a]) and all(abs(mpmath.im(x)) <= tiny * scale for x in column)
        if real:
            mu[a] = mpmath.re(mu[a])
        for j, x in enumerate(column):
            V[j, a] = (mpmath.re(x) if real else x) / scale
    return mu, V, mpmath.inverse(V)


def _bilinear(evaluator, y, u, w):
    """D^2 (rhs, eps_g)(y)[u, w] for complex u, w: bilinear in their real and imaginary parts."""
    parts = ((mpmath.re, mpmath.re, 1), (mpmath.im, mpmath.im, -1), (mpmath.re, mpmath.im, 1j),
             (mpmath.im, mpmath.re, 1j))
    total = [mpmath.mpf(0)] * (len(y) + 1)
    for part_u, part_w, factor in parts:
        a, b = [part_u(x) for x in u], [part_w(x) for x in w]
        if any(a) and any(b):
            rhs, eps = evaluator.second(y, a, b)
            total = [t + factor * v for t, v in zip(total, rhs + [eps])]
    return total[:-1], total[-1]


def _second_order(evaluator, y, mu, V, W, c, bits):
    """The pairs (a, b) of modes kept, the particular solutions (mu_a + mu_b - J)^-1 D^2 rhs[v_a, v_b]/2
    and eps_g's curvature D^2 eps_g[v_a, v_b]/2.  A mode slaved to the slow ones has c = O(delta^2),
    so its pairs are third order: left out (the threshold delta^2.5 sits between delta^2 and ^3)."""
    n = len(mu)
    size = max(abs(x) for x in c)
    pairs = [(a, b) for a in range(n) for b in range(a, n) if abs(c[a] * c[b]) > size ** mpmath.mpf(2.5)]
    cols = [[V[j, a] for j in range(n)] for a in range(n)]
    particular, curvature = {}, {}
    for a, b in pairs:
        rhs, eps = _bilinear(evaluator, y, cols[a], cols[b])
        gaps = [mu[a] + mu[b] - m for m in mu]
        if min(abs(g) for g in gaps) <= mpmath.mpf(2) ** (20 - bits) * abs(mu[a] + mu[b]):
            raise PrecisionError("a resonance mu_a + mu_b = mu_k: no exponential-sum expansion")
        projected = W * (mpmath.matrix(rhs) / 2)
        particular[a, b] = V * mpmath.matrix([projected[k] / gaps[k] for k in range(n)])
        curvature[a, b] = eps / 2
    return pairs, particular, curvature


def _expand(evaluator, y, mu, V, grad, delta):
    """(rates, weights, pairs) of the second-order expansion from the deviation `delta`."""
    mu, V, W = _modes(mu, V, evaluator.bits)
    n = len(mu)
    c = W * delta
    pairs, particular, curvature = _second_order(evaluator, y, mu, V, W, c, evaluator.bits)
    mult = lambda a, b: 1 if a == b else 2
    for _ in range(3):  # the second-order part of the start belongs to the pairs, not the modes
        c = W * (delta - sum((mult(a, b) * c[a] * c[b] * particular[a, b] for a, b in pairs), mpmath.matrix(n, 1)))
    along = [mpmath.fsum(grad[j] * V[j, a] for j in range(n)) for a in range(n)]
    weights = [c[a] * along[a] for a in range(n)]
    weights += [mult(a, b) * c[a] * c[b] * (mpmath.fsum(grad[j] * particular[a, b][j] for j in range(n))
                                             + curvature[a, b]) for a, b in pairs]
    return list(mu) + [mu[a] + mu[b] for a, b in pairs], weights, pairs


def _rate_digits(mu, rerun, pairs, cap):
    """Verified digits of each rate mu_a and mu_a + mu_b: agreement with the nearest rerun values."""
    nearest = lambda m: min(rerun, key=lambda r: abs(r - m))
    single = list(matched_digits(rerun, mu, cap))
    return tuple(single + [complex_digits(mu[a] + mu[b], nearest(mu[a]) + nearest(mu[b]), cap) for a, b in pairs])


def late_time_expansion(problem, initial_or_overlaps, alpha0, *, digits=20, teacher=None):
    """eps_g as a weighted sum of exponentials from a late state at alpha0: an InitialState (e.g. from
    `first_below`) or a dict of state names to values (an entry of ``solve(..., overlaps=True)
    .overlaps``, its teacher `teacher`, default rho_k I); the students are relabelled by the teacher
    each has specialised to."""
    _check_request(problem, digits)
    state, t = _state(problem, initial_or_overlaps, teacher)
    bits = bits_for_digits(digits) + 32
    system, evaluator, y_star = _specialised(problem, t, bits)
    start, perm = _relabelled(state, [str(s) for s in system.states], problem)
    jac, grad = _jacobian_at(evaluator, y_star, digits)
    mu, vectors = engine.eigensystem(jac, bits, vectors=True)
    rerun = _checked_rates(problem, t, digits, bits, mu)[0]
    with working_precision(bits):
        delta = mpmath.matrix([_mpf(v) - y for v, y in zip(start, y_star)])
        rates, weights, pairs = _expand(evaluator, y_star, mu, vectors, grad, delta)
        checked = _rate_digits(rates[:len(mu)], rerun, pairs, digits)
    return LateTimeExpansion(exact(alpha0), tuple(rates), tuple(weights), len(mu), perm, bits, checked)


MAX_ALPHA = 10 ** 6  # the float64 run to alpha_max takes minutes beyond this


def first_below(problem, initial, level, alpha_max):
    """(alpha0, state, eps_g) where the float64 ODE from `initial` first has eps_g < level: a terminal
    event of heyoka's Taylor integrator on eps_g - level.  The state is an InitialState with the
    initial teacher, ready for `late_time_expansion`.  None when eps_g stays above `level` up to
    `alpha_max`."""
    if not isinstance(problem, Problem) or not isinstance(initial, InitialState):
        raise ExactdynError("first_below needs an exactdyn Problem and InitialState")
    initial.check_fits(problem)
    level, alpha_max = to_fraction(level, "level"), to_fraction(alpha_max, "alpha_max")
    if level <= 0 or alpha_max <= 0:
        raise ExactdynError("the level and alpha_max must be positive")
    if alpha_max > MAX_ALPHA:
        raise ExactdynError(f"alpha_max must be at most {MAX_ALPHA:.0e}: the float64 ODE is integrated step by step")
    system = derive(problem.structure, "mode")
    spec = problem.spectrum
    table = overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights],
                          initial.r, initial.q, initial.t, problem.eta)
    found = engine.first_below(engine.compile_system(system), *assign(system, table), float(level), float(alpha_max))
    if found is None:
        return None
    at = dict(zip(system.layout, found[1]))
    K, M = problem.K, problem.M
    r = [[[at["r", k, i, n] for n in range(1, M + 1)] for i in range(1, K + 1)] for k in range(1, problem.L + 1)]
    q = [[[at["q", k, min(i, j), max(i, j)] for j in range(1, K + 1)] for i in range(1, K + 1)]
         for k in range(1, problem.L + 1)]
    return found[0], InitialState(r, q, initial.t, initial.spectrum), found[2]
