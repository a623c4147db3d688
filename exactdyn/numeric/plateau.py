"""The symmetric plateau of a committee machine: fixed point, linearisation, escape rate.

On the plateau every student unit is the same: r^k_in = x_kn, q^k_ii = y_k, q^k_ij = z_k (i != j),
for any teacher overlaps t^k.  That subspace is invariant; inside it the plateau is a fixed point,
found here by Newton's method at mpmath precision on the derived eigenmode right-hand sides (no
approximation of the teacher overlaps; the papers' uniform-T, first-order-in-eta approximation is
`approximate_plateau`).  Its Jacobian in the full state space, by central differences at three times the working
precision, has positive eigenvalues along the symmetry-breaking directions: the largest is the
escape rate, and a deviation d0 from the plateau needs about ln(1/d0)/rate to grow to order one.
"""
from dataclasses import dataclass, replace

import mpmath
import numpy as np

from ..symbolic.cache import derive
from .committee import integrate
from .compiled import compile_system
from ..errors import ExactdynError, PrecisionError
from ..numbers import to_fraction
from .overlaps import assign, overlap_table
from ..numbers import bits_for_digits, working_precision


@dataclass(frozen=True)
class Plateau:
    """Fixed point (per group: x_k = (r^k_in)_n, one value per teacher n; y_k = q^k_ii; z_k = q^k_ij),
    eps_g there, the Jacobian's eigenvalues (descending real parts), the escape rate (largest real
    part), all as mpf/mpc at `digits` digits.  ``approximation`` names what was left out, if anything."""

    x: tuple
    y: tuple
    z: tuple
    eps_g: object
    eigenvalues: tuple
    escape_rate: object
    digits: int
    bits: int
    residual: object
    approximation: str = "none"

    def escape_time(self, deviation):
        """alpha for a symmetry-breaking deviation `deviation` to grow by 1/deviation (to order one)."""
        d = to_fraction(deviation, "deviation")
        with mpmath.workprec(self.bits):
            return mpmath.log(mpmath.mpf(d.denominator) / d.numerator) / self.escape_rate


def _as_mpf(v):
    """An mpf at the working precision: floats exactly as stored, rationals divided out."""
    return mpmath.mpf(v) if not hasattr(v, "numerator") else mpmath.mpf(v.numerator) / v.denominator


def uniform_teacher(teacher):
    """The papers' plateau approximation of the teacher overlaps: in each group every diagonal entry
    becomes the mean diagonal and every off-diagonal entry the mean off-diagonal (so each row keeps
    the average row sum)."""
    out = []
    for t in teacher:
        t = np.asarray(t, float)
        M = t.shape[0]
        off = t[~np.eye(M, dtype=bool)].mean() if M > 1 else 0.0
        out.append((np.full((M, M), off) + (np.diag(t).mean() - off) * np.eye(M)).tolist())
    return out


def find_plateau(structure, lam, frac, t, eta, *, digits=30, guess_alpha=400.0, first_order=False):
    """The plateau of `structure` (eigenmode system) where all students are alike, for any teacher
    overlaps `t` (per group, M x M), eigenvalues `lam` and fractions `frac` (floats or exact).

    Alike students stay alike (the equations are symmetric under permuting students), so the
    unknowns per group are r^k_in = x_kn (one per teacher), q^k_ii = y_k and q^k_ij = z_k.
    ``first_order``: drop the eta^2 terms (the right-hand side is eta A + eta^2 B exactly, so
    eta A = (4 F(eta) - F(2 eta)) / 2), as the papers' plateau analysis does."""
    K, M, L = structure.K, structure.M, structure.L
    if K < 2:
        raise ExactdynError("a plateau of specialisation needs K >= 2 students")
    t = [np.asarray(x, float).tolist() for x in t]
    if len(t) != L or any(np.shape(x) != (M, M) for x in t):
        raise ExactdynError(f"give the teacher overlaps as {L} matrices of size {M} x {M}")
    system = derive(structure, "mode")
    f = compile_system(system, "mpmath")
    names = [str(s) for s in system.states]
    # a guess from float64: a start with alike students keeps them alike and settles on the plateau
    r0 = [[[0.01 * fr] * M for _ in range(K)] for fr in frac]
    q0 = [(0.1 * fr * np.eye(K)).tolist() for fr in frac]
    run = integrate(structure, (list(lam), list(frac), r0, q0, t, L), float(eta), [0.0, guess_alpha], verify=False)
    end = run.overlaps[-1]
    guess = []
    for k in range(1, L + 1):
        guess += [end[f"r{k}_1_{n}"] for n in range(1, M + 1)] + [end[f"q{k}_1_1"], end[f"q{k}_1_2"]]
    width = M + 2
    bits = bits_for_digits(digits) + 32
    with working_precision(bits):
        params = [_params(system, lam, frac, t, _as_mpf(eta) * factor, K, M, L) for factor in (1, 2)]
        if first_order:
            rhs = lambda y: [(4 * a - b) / 2 for a, b in zip(f.rhs(y, params[0]), f.rhs(y, params[1]))]
        else:
            rhs = lambda y: f.rhs(y, params[0])
        index = {n: i for i, n in enumerate(names)}

        def state(v):
            y = [mpmath.mpf(0)] * len(names)
            for k in range(L):
                block = v[width * k: width * (k + 1)]
                for i in range(1, K + 1):
                    for n in range(1, M + 1):
                        y[index[f"r{k + 1}_{i}_{n}"]] = block[n - 1]
                    for j in range(i, K + 1):
                        y[index[f"q{k + 1}_{i}_{j}"]] = block[M] if i == j else block[M + 1]
            return y

        def reduced(*v):
            d = rhs(state(v))
            out = []
            for k in range(1, L + 1):
                out += [d[index[f"r{k}_1_{n}"]] for n in range(1, M + 1)]
                out += [d[index[f"q{k}_1_1"]], d[index[f"q{k}_1_2"]]]
            return out

        try:
            root = mpmath.findroot(reduced, [mpmath.mpf(g) for g in guess], tol=mpmath.mpf(2) ** (-2 * bits + 40),
                                   maxsteps=200)
        except (ValueError, ZeroDivisionError) as exc:
            raise PrecisionError(f"Newton's method did not converge on the plateau: {exc}") from None
        root = [root[i] for i in range(len(guess))]
        y_star = state(root)
        residual = max(abs(v) for v in rhs(y_star))
        if residual > mpmath.mpf(10) ** -digits:
            raise PrecisionError(f"the plateau residual {mpmath.nstr(residual, 3)} exceeds 1e-{digits}")
        jac = _jacobian(rhs, y_star, bits)
        eig = mpmath.eig(mpmath.matrix(jac), left=False, right=False)
        eig = sorted(eig, key=lambda e: -mpmath.re(e))
        rate = mpmath.re(eig[0])
        eps = f.eps_g(y_star, params[0])
    blocks = [root[width * k: width * (k + 1)] for k in range(L)]
    return Plateau(tuple(tuple(b[:M]) for b in blocks), tuple(b[M] for b in blocks), tuple(b[M + 1] for b in blocks),
                   eps, tuple(eig), rate, digits, bits, residual, "first order in eta" if first_order else "none")


def approximate_plateau(structure, lam, frac, t, eta, *, digits=30):
    """The papers' approximate plateau: uniform teacher overlaps per group (`uniform_teacher`) and
    the equations to first order in eta, solved without further approximation."""
    pl = find_plateau(structure, lam, frac, uniform_teacher(t), eta, digits=digits, first_order=True)
    return replace(pl, approximation="uniform teacher overlaps, first order in eta")


def _params(system, lam, frac, t, eta, K, M, L):
    blocks = [[[_as_mpf(x) for x in row] for row in tk] for tk in t]
    base = overlap_table([_as_mpf(x) for x in lam], [_as_mpf(x) for x in frac],
                         [[[mpmath.mpf(0)] * M for _ in range(K)] for _ in range(L)],
                         [[[mpmath.mpf(0)] * K for _ in range(K)] for _ in range(L)], blocks, eta)
    return assign(system, base)[1]


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
    return [[cols[j][i] for j in range(len(y))] for i in range(len(cols[0]))]


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


def _specialised_point(structure, lam, frac, t, eta, digits):
    """(compiled system, state names, y* = (r = q = t), params) at the working precision."""
    if structure.K != structure.M:
        raise ExactdynError("the specialised fixed point r = q = t needs K = M")
    system = derive(structure, "mode")
    f = compile_system(system, "mpmath")
    blocks = [[[_as_mpf(x) for x in row] for row in np.asarray(tk, dtype=object).tolist()] for tk in t]
    table = overlap_table([_as_mpf(x) for x in lam], [_as_mpf(x) for x in frac], blocks, blocks, blocks, _as_mpf(eta))
    y_star, params = assign(system, table)
    if max(abs(v) for v in f.rhs(y_star, params)) > mpmath.mpf(10) ** -digits:
        raise PrecisionError("r = q = t is not a fixed point of this system")
    return f, [str(x) for x in system.states], y_star, params


def late_time_linearisation(structure, lam, frac, t, eta, *, digits=20):
    bits = bits_for_digits(digits) + 32
    with working_precision(bits):
        f, names, y_star, params = _specialised_point(structure, lam, frac, t, eta, digits)
        eig, vectors = mpmath.eig(mpmath.matrix(_jacobian(lambda y: f.rhs(y, params), y_star, bits)), left=False)
        order = sorted(range(len(eig)), key=lambda i: -mpmath.re(eig[i]))
        slow = [mpmath.re(vectors[j, order[0]]) for j in range(len(eig))]
    return LateTime(tuple(eig[i] for i in order), mpmath.re(eig[order[0]]), mpmath.re(eig[order[-1]]), tuple(slow),
                    tuple(names), digits, bits)


@dataclass(frozen=True)
class LateTimeExpansion:
    """eps_g(alpha) = sum_j weights[j] exp(rates[j] (alpha - alpha0)) near the specialised point, to
    second order in the deviation at alpha0: the rates are the Jacobian's eigenvalues mu_a (weighted
    by eps_g's gradient) and their pairwise sums mu_a + mu_b (from eps_g's curvature and the
    equations' own second-order response).  ``first_order_at`` keeps only the former, a
    first-order Taylor expansion of eps_g in the deviation."""

    alpha0: float
    rates: tuple
    weights: tuple
    first_order_count: int  # the first rates/weights are the first-order terms
    permutation: tuple      # student i was relabelled to teacher permutation[i]
    bits: int

    def _sum(self, alpha, terms):
        with mpmath.workprec(self.bits):
            s = _as_mpf(alpha) - mpmath.mpf(self.alpha0)
            return mpmath.re(mpmath.fsum(w * mpmath.exp(r * s) for r, w in terms))

    def eps_at(self, alpha):
        return self._sum(alpha, zip(self.rates, self.weights))

    def first_order_at(self, alpha):
        n = self.first_order_count
        return self._sum(alpha, zip(self.rates[:n], self.weights[:n]))

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


def specialisation_permutation(overlaps, K, L):
    """The teacher each student has specialised to (largest summed r^k_in), as a permutation tuple."""
    from itertools import permutations

    score = lambda p: sum(overlaps[f"r{k}_{i + 1}_{p[i] + 1}"] for k in range(1, L + 1) for i in range(K))
    return max(permutations(range(K)), key=score)


def late_time_expansion(structure, lam, frac, t, eta, overlaps, alpha0, *, digits=20):
    """eps_g as a weighted sum of exponentials from the state `overlaps` (name -> value, e.g. one
    entry of `committee.integrate(...).overlaps`) at alpha0 in the late phase; the students are
    relabelled by the teacher each has specialised to."""
    K, L = structure.K, structure.L
    bits = bits_for_digits(digits) + 32
    with working_precision(bits):
        f, names, y_star, params = _specialised_point(structure, lam, frac, t, eta, digits)
        missing = [n for n in names if n not in overlaps]
        if missing:
            raise ExactdynError(f"the state has no {', '.join(missing[:3])}: give the overlaps of a {K} x {K}, "
                                f"L = {L} run")
        perm = specialisation_permutation(overlaps, K, L)
        relabel = {}
        for k in range(1, L + 1):
            for i in range(K):
                for n in range(structure.M):
                    relabel[f"r{k}_{perm[i] + 1}_{n + 1}"] = overlaps[f"r{k}_{i + 1}_{n + 1}"]
                for j in range(i, K):
                    a, b = sorted((perm[i], perm[j]))
                    relabel[f"q{k}_{a + 1}_{b + 1}"] = overlaps[f"q{k}_{i + 1}_{j + 1}"]
        delta = mpmath.matrix([_as_mpf(relabel[n]) - y for n, y in zip(names, y_star)])
        rhs = lambda y: f.rhs(y, params)
        eps = lambda y: [f.eps_g(y, params)]
        n = len(names)
        mu, V = mpmath.eig(mpmath.matrix(_jacobian(rhs, y_star, bits)))
        mu, V = _real_where_real(mu, V, bits)
        for a in range(n):  # unit columns: the coordinates c below are deviation amplitudes
            scale = max(abs(V[j, a]) for j in range(n))
            for j in range(n):
                V[j, a] /= scale
        W = mpmath.inverse(V)
        grad = _jacobian(eps, y_star, bits)[0]
        cols = [V[:, a] for a in range(n)]
        c = W * delta
        # A mode slaved to the slow ones has c = O(delta^2); its pairs are third order: left out
        # (threshold delta^2.5 sits between delta^2 and delta^3).
        size = max(abs(x) for x in c)
        pairs = [(a, b) for a in range(n) for b in range(a, n) if abs(c[a] * c[b]) > size ** mpmath.mpf(2.5)]
        second_eps, particular = {}, {}
        for a, b in pairs:
            second_rhs = mpmath.matrix(_bilinear(rhs, y_star, cols[a], cols[b], bits)) / 2
            second_eps[a, b] = _bilinear(eps, y_star, cols[a], cols[b], bits)[0] / 2
            # (mu_a + mu_b - J)^-1 in the eigenbasis: V diag(1 / (mu_a + mu_b - mu_k)) W
            gaps = [mu[a] + mu[b] - m for m in mu]
            if min(abs(g) for g in gaps) <= mpmath.mpf(2) ** (20 - bits) * abs(mu[a] + mu[b]):
                raise PrecisionError("a resonance mu_a + mu_b = mu_k: no exponential-sum expansion")
            projected = W * second_rhs
            particular[a, b] = V * mpmath.matrix([projected[k] / gaps[k] for k in range(n)])
        mult = lambda a, b: 1 if a == b else 2
        for _ in range(3):  # the second-order part of the start belongs to the pairs, not the modes
            c = W * (delta - sum((mult(a, b) * c[a] * c[b] * particular[a, b] for a, b in pairs), mpmath.matrix(n, 1)))
        gv = [mpmath.fsum(grad[j] * cols[a][j] for j in range(n)) for a in range(n)]
        rates = list(mu) + [mu[a] + mu[b] for a, b in pairs]
        weights = [c[a] * gv[a] for a in range(n)]
        weights += [mult(a, b) * c[a] * c[b] * (mpmath.fsum(grad[j] * particular[a, b][j] for j in range(n))
                                                 + second_eps[a, b]) for a, b in pairs]
    return LateTimeExpansion(float(alpha0), tuple(rates), tuple(weights), n, perm, bits)


def _real_where_real(mu, V, bits):
    """Eigenpairs whose imaginary parts are round-off made real (a real pair costs one second
    difference in `_bilinear` instead of four)."""
    tiny = mpmath.mpf(2) ** (24 - bits)
    mu, V = list(mu), V.copy()
    for a in range(len(mu)):
        column = [V[j, a] for j in range(V.rows)]
        scale = max(abs(x) for x in column)
        if abs(mpmath.im(mu[a])) <= tiny * abs(mu[a]) and all(abs(mpmath.im(x)) <= tiny * scale for x in column):
            mu[a] = mpmath.re(mu[a])
            for j, x in enumerate(column):
                V[j, a] = mpmath.re(x)
    return mu, V


def _bilinear(fun, y, u, w, bits):
    """The symmetric second derivative D^2 fun(y)[u, w] for complex directions, by polarisation of
    real second differences (step 2^-bits at three times the precision)."""
    re = lambda v: [mpmath.re(x) for x in v]
    im = lambda v: [mpmath.im(x) for x in v]

    def real(p, q):
        if all(x == 0 for x in p) or all(x == 0 for x in q):
            return None
        with working_precision(3 * bits):
            h = mpmath.mpf(2) ** (-bits)
            at = lambda sp, sq: fun([yj + h * (sp * pj + sq * qj) for yj, pj, qj in zip(y, p, q)])
            return [(a - b - c + d) / (4 * h * h) for a, b, c, d in zip(at(1, 1), at(1, -1), at(-1, 1), at(-1, -1))]

    parts = [(real(re(u), re(w)), 1), (real(im(u), im(w)), -1), (real(re(u), im(w)), 1j), (real(im(u), re(w)), 1j)]
    out = None
    for values, factor in parts:
        if values is not None:
            term = [factor * v for v in values]
            out = term if out is None else [o + t for o, t in zip(out, term)]
    return out if out is not None else [mpmath.mpf(0)] * len(fun(y))
