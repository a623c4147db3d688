"""One-pass SGD on any diagonal spectrum through the exact per-group overlap chain (numba).

Group l holds N_l directions of eigenvalue lambda_l; G_l = (J_l; B_l) are the student's and
teacher's rows restricted to it and C_l = G_l G_l^T / N their Gram matrix ((K+M) x (K+M): the
overlaps q^l, r^l, t^l).  With xi_l ~ N(0, lambda_l I_{N_l}) fresh at every step, write
G_l / sqrt(N) = chol(C_l) W with W orthonormal rows: z = W xi_l / sqrt(lambda_l) is standard normal,
the projections u_l = G_l xi_l / sqrt(N) = sqrt(lambda_l) chol(C_l) z, and |xi_l|^2 = lambda_l
(|z|^2 + chi^2_{N_l - rank C_l}) with the chi^2 independent of z.  The fields are sums over groups,
and the update J_l += (eta / sqrt(N)) delta xi_l changes C_l only through u_l and |xi_l|^2:

    r^l += (eta/N) delta u_l[teacher]^T
    q^l += (eta/N) (delta u_l[student]^T + u_l[student] delta^T) + (eta/N)^2 |xi_l|^2 delta delta^T

So the C_l form a Markov chain whose law is that of the N-dimensional simulation (same draws of
the initial weights), at O(L (K+M)^3) per step whatever N.  A student started at J = 0 makes some
C_l singular: the Cholesky factor is then taken semidefinite and the rank it finds sets the chi^2's
degrees of freedom (a pivot below 1e-10 of its diagonal entry counts as zero: a direction that
small carries a relative 1e-10 of |xi_l|^2 whichever way it is counted).
"""
from concurrent.futures import ThreadPoolExecutor
import math
import os

import numba
import numpy as np

from ..errors import ExactdynError
from ..symbolic.conventions import output_weight
from ..symbolic.expectations import Erf, Polynomial
from .sgd import Simulation, _progress_iter, _run_arguments, group_sizes

MAX_CHAIN_STEPS = 10 ** 10
PIVOT_ZERO = 1e-10  # a Cholesky pivot this small relative to its diagonal entry is a zero direction

# The kernels live at module level so that numba's on-disk cache finds them again in a new process
# (closures would be compiled anew each time); this module is imported only when a chain runs.


@numba.njit(cache=True, nogil=True)
def g_and_dg(x, coeffs, is_erf):
    """g and g' of erf(x / sqrt 2) (is_erf) or of the polynomial sum_p coeffs[p] x^p."""
    if is_erf:
        return math.erf(x / math.sqrt(2.0)), math.sqrt(2.0 / math.pi) * math.exp(-x * x / 2)
    value, slope = 0.0, 0.0
    for i in range(coeffs.shape[0] - 1, -1, -1):
        slope = slope * x + value
        value = value * x + coeffs[i]
    return value, slope


@numba.njit(cache=True, nogil=True)
def cholesky_into(C, L):
    """Cholesky factor of C written into L; False when C is not positive definite."""
    n = C.shape[0]
    for i in range(n):
        for j in range(i + 1):
            s = C[i, j]
            for m in range(j):
                s -= L[i, m] * L[j, m]
            if i == j:
                if s <= 0.0:
                    return False
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    return True


@numba.njit(cache=True, nogil=True)
def semidefinite_cholesky(C, F):
    """Lower factor F with F F^T = C for a positive semidefinite C, zero columns where a pivot
    vanishes; returns the rank, or -1 when C is not finite or clearly indefinite (a diverged run)."""
    n = C.shape[0]
    rank = 0
    for i in range(n):
        for j in range(i + 1):
            s = C[i, j]
            for m in range(j):
                s -= F[i, m] * F[j, m]
            if i == j:
                if not (math.isfinite(s) and math.isfinite(C[i, i])) or s < -1e-6 * abs(C[i, i]):
                    return -1
                if s <= PIVOT_ZERO * C[i, i]:
                    F[i, i] = 0.0
                else:
                    F[i, i] = math.sqrt(s)
                    rank += 1
            else:
                F[i, j] = s / F[j, j] if F[j, j] > 0.0 else 0.0
    return rank


@numba.njit(cache=True, nogil=True)
def run_isotropic(C0, K, records, eta, N, v, w, c, coeffs, is_erf, seed):
    """The isotropic chain (sgd.simulate_isotropic): one Gram matrix C0 (n x n), positive definite."""
    np.random.seed(seed)
    n = C0.shape[0]
    C = C0.copy()
    L = np.zeros((n, n))
    z = np.empty(n)
    f = np.empty(n)
    delta = np.empty(K)
    out = np.empty((records.shape[0], n, n))
    step, r = 0, 0
    while r < records.shape[0]:
        while step < records[r]:
            if not cholesky_into(C, L):
                return out, step
            xi2 = np.random.chisquare(N - n) if N > n else 0.0
            for i in range(n):
                z[i] = np.random.standard_normal()
                xi2 += z[i] * z[i]
            for i in range(n):
                s = 0.0
                for j in range(i + 1):
                    s += L[i, j] * z[j]
                f[i] = s
            sigma, zeta = 0.0, 0.0
            for i in range(K):
                sigma += v * g_and_dg(f[i], coeffs, is_erf)[0]
            for i in range(K, n):
                zeta += w * g_and_dg(f[i], coeffs, is_erf)[0]
            for i in range(K):
                delta[i] = 2.0 * c * v * g_and_dg(f[i], coeffs, is_erf)[1] * (zeta - sigma)
            a = eta / N
            for i in range(K):
                for j in range(K, n):
                    C[i, j] += a * delta[i] * f[j]
                    C[j, i] = C[i, j]
                for j in range(i, K):
                    C[i, j] += a * (delta[i] * f[j] + delta[j] * f[i]) + a * a * xi2 * delta[i] * delta[j]
                    C[j, i] = C[i, j]
            step += 1
        out[r] = C
        r += 1
    return out, step


@numba.njit(cache=True, nogil=True)  # nogil: seeds run on threads, each with its own generator
def run_groups(C0, K, lam, sizes, records, eta, N, v, w, c, coeffs, is_erf, rng):
    """The chain from the Gram matrices C0 (L x n x n) to each step count in `records`: (states, steps done).
    `rng` is a numpy Generator (numba's ziggurat normals: 4x faster than the legacy np.random)."""
    groups, n = C0.shape[0], C0.shape[1]
    C = C0.copy()
    F = np.zeros((n, n))
    z = np.zeros(n)
    u = np.empty((groups, n))
    norm2 = np.empty(groups)
    f = np.empty(n)
    delta = np.empty(K)
    root = np.sqrt(lam)
    out = np.empty((records.shape[0], groups, n, n))
    a = eta / N
    step, r = 0, 0
    while r < records.shape[0]:
        while step < records[r]:
            for i in range(n):
                f[i] = 0.0
            for l in range(groups):
                rank = semidefinite_cholesky(C[l], F)
                if rank < 0:
                    return out, step
                x2 = rng.chisquare(sizes[l] - rank)
                for i in range(n):
                    if F[i, i] > 0.0:
                        z[i] = rng.standard_normal()
                        x2 += z[i] * z[i]
                    else:
                        z[i] = 0.0
                for i in range(n):
                    s = 0.0
                    for j in range(i + 1):
                        s += F[i, j] * z[j]
                    u[l, i] = root[l] * s
                    f[i] += u[l, i]
                norm2[l] = lam[l] * x2
            sigma, zeta = 0.0, 0.0
            for i in range(K):
                sigma += v * g_and_dg(f[i], coeffs, is_erf)[0]
            for i in range(K, n):
                zeta += w * g_and_dg(f[i], coeffs, is_erf)[0]
            for i in range(K):
                delta[i] = 2.0 * c * v * g_and_dg(f[i], coeffs, is_erf)[1] * (zeta - sigma)
            for l in range(groups):
                Cl = C[l]
                for i in range(K):
                    for j in range(K, n):
                        Cl[i, j] += a * delta[i] * u[l, j]
                        Cl[j, i] = Cl[i, j]
                    for j in range(i, K):
                        Cl[i, j] += a * (delta[i] * u[l, j] + delta[j] * u[l, i]) + a * a * norm2[l] * delta[i] * delta[j]
                        Cl[j, i] = Cl[i, j]
            step += 1
        out[r] = C
        r += 1
    return out, step


def chain_applies(structure, fractions, N):
    """Whether the chain runs this case: an activation with a compiled form and every group holding
    more than K + M directions (the chi^2 needs a positive number of degrees of freedom)."""
    if not isinstance(structure.activation, (Erf, Polynomial)):
        return False
    try:
        sizes = group_sizes(fractions, N)
    except ExactdynError:
        return False
    return min(sizes) > structure.K + structure.M


def _initial_grams(structure, initial, L, seed):
    """The per-group Gram matrices C_l = [[q, r], [r^T, t]] (L x n x n) of `initial` for `seed`."""
    K, M = structure.K, structure.M
    state = initial(seed) if callable(initial) else initial
    if hasattr(state, "r") and hasattr(state, "q") and hasattr(state, "t"):
        state = (state.r, state.q, state.t)
    try:
        R, Q, T = (np.asarray(np.array(x, dtype=object), dtype=float) for x in state)
    except (TypeError, ValueError):
        raise ExactdynError("the initial overlaps must be (r, q, t) per group: L x K x M, L x K x K, L x M x M "
                            "numbers, or an InitialState") from None
    if R.shape != (L, K, M) or Q.shape != (L, K, K) or T.shape != (L, M, M):
        raise ExactdynError(f"the initial overlaps must be r {L} x {K} x {M}, q {L} x {K} x {K}, t {L} x {M} x {M} "
                            f"(one matrix per eigenvalue group), got {R.shape}, {Q.shape}, {T.shape}")
    C = np.concatenate([np.concatenate([Q, R], 2), np.concatenate([np.swapaxes(R, 1, 2), T], 2)], 1)
    if not np.all(np.isfinite(C)) or np.any(np.abs(C - np.swapaxes(C, 1, 2)) > 1e-12 * (1 + np.abs(C))):
        raise ExactdynError(f"seed {seed}: the initial overlaps are not finite and symmetric")
    if np.any(np.linalg.eigvalsh(C)[:, 0] < -1e-9 * np.abs(C).max(axis=(1, 2))):
        raise ExactdynError(f"seed {seed}: the initial overlaps of some group are no Gram matrix of real vectors "
                            "(not positive semidefinite)")
    return C


def _drawn_grams(structure, sizes, N, sigma_J, seed):
    """Per-group Gram matrices of the draw `simulate` makes for `seed`: B ~ N(0, I_N), J ~ N(0, sigma_J^2 I_N)."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(structure.M, N))
    J = sigma_J * rng.normal(size=(structure.K, N))
    G = np.concatenate([J, B])
    edges = np.cumsum([0] + list(sizes))
    return np.stack([G[:, a:b] @ G[:, a:b].T / N for a, b in zip(edges[:-1], edges[1:])])


def simulate_groups(structure, eigenvalues, fractions, eta, alpha, *, N, seeds, initial=None, sigma_J=0.0,
                    init_seed=None, progress=False):
    """One-pass SGD at input dimension N on the spectrum (eigenvalues, fractions) through the exact
    per-group overlap chain: the law of `simulate`'s overlaps at a cost independent of N.

    The start is `initial` (an InitialState or (r, q, t) per group, shared by all seeds, or a callable
    seed -> one of those), or else the draw `simulate` makes (B ~ N(0, I_N), J ~ N(0, sigma_J^2 I_N) from
    seed `init_seed` for every seed, or from each seed's own).  Returns a Simulation."""
    K, M = structure.K, structure.M
    seeds, alpha = _run_arguments(N, eta, seeds, alpha)
    L = len(eigenvalues)
    if L != len(fractions) or L < 1:
        raise ExactdynError("give one fraction per eigenvalue")
    lam = np.array([float(x) for x in eigenvalues])
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ExactdynError("the eigenvalues must be finite and positive")
    sizes = group_sizes(fractions, N)
    if min(sizes) <= K + M:
        raise ExactdynError(f"the overlap chain needs more than K + M = {K + M} directions in every eigenvalue group, "
                            f"N = {N} gives {min(sizes)}: use simulate (the N-dimensional SGD)")
    act = structure.activation
    if not isinstance(act, (Erf, Polynomial)):
        raise ExactdynError(f"no compiled form of activation {act!r} for the overlap chain")
    is_erf = isinstance(act, Erf)
    coeffs = np.array([0.0] if is_erf else [float(x) for x in act.coeffs])
    records = np.array([int(round(a * N)) for a in alpha], dtype=np.int64)
    if records[-1] > MAX_CHAIN_STEPS:
        raise ExactdynError(f"alpha = {alpha[-1]} at N = {N} is more than {MAX_CHAIN_STEPS} SGD steps")
    sigma = float(sigma_J)
    if not np.isfinite(sigma) or sigma < 0:
        raise ExactdynError(f"sigma_J must be >= 0, got {sigma_J}")
    v = float(output_weight(structure.output_weights, K))
    w = float(output_weight(structure.teacher_output_weights, M))
    size_array = np.array(sizes, dtype=np.float64)

    def start(s):
        if initial is not None:
            return _initial_grams(structure, initial, L, s)
        return _drawn_grams(structure, sizes, N, sigma, s if init_seed is None else init_seed)

    def one_seed(s):
        C0 = start(s)
        out, done = run_groups(C0, K, lam, size_array, records, float(eta), N, v, w, float(structure.loss_factor), coeffs,
                        is_erf, np.random.default_rng([int(s), 2]))  # apart from the weights stream
        if done < records[-1]:
            raise ExactdynError(f"seed {s}: the overlaps became non-finite or lost positive semidefiniteness after "
                                f"{done} steps (the run diverged: eta past the stability limit?)")
        return C0, out

    # each run seeds its own thread's generator, so the result does not depend on the thread count
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        runs = list(_progress_iter(pool.map(one_seed, seeds), progress, total=len(seeds)))
    r = np.stack([out[:, :, :K, K:] for _, out in runs], 1)
    q = np.stack([out[:, :, :K, :K] for _, out in runs], 1)
    t = np.stack([C0[:, K:, K:] for C0, _ in runs])
    return Simulation(alpha, N, seeds, tuple(float(x) for x in lam), tuple(fractions), r, q, t)
