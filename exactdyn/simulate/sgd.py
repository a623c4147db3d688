"""Finite-N one-pass SGD of the teacher-student committee machine (numpy, seeds vectorised).

Inputs xi ~ N(0, Sigma) with Sigma diagonal (the eigenbasis; teacher and student draws are
rotation invariant, so this loses nothing for the expected initial state).  Group k holds
round(rho_k N) coordinates.  Records the overlaps per eigenvalue group at each requested alpha.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import os

import numpy as np

from ..symbolic.conventions import output_weight
from ..errors import ExactdynError
from ..symbolic.expectations import Erf, Polynomial
from ..symbolic.quadrature_activations import QuadratureActivation

MAX_STEPS = 50_000_000
MAX_SEEDS = 100_000
BUFFER = 2 ** 24  # input numbers held at once (128 MB)


@dataclass(frozen=True)
class Simulation:
    """Overlaps per group: r[a, s, k] (K x M), q[a, s, k] (K x K), t[s, k] (M x M); a indexes alpha,
    s the seed, k the eigenvalue group."""

    alpha: tuple
    N: int
    seeds: tuple
    eigenvalues: tuple
    fractions: tuple
    r: np.ndarray
    q: np.ndarray
    t: np.ndarray


def _run_arguments(N, eta, seeds, alpha):
    """Validated (seeds, alpha) of an SGD run; N and eta are checked too."""
    if isinstance(N, bool) or not isinstance(N, int) or N < 2:
        raise ExactdynError(f"N must be a whole number >= 2, got {N!r}")
    if not np.isfinite(float(eta)) or float(eta) <= 0:
        raise ExactdynError(f"the learning rate eta must be positive, got {eta}")
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__") or len(seeds) > MAX_SEEDS:
        raise ExactdynError(f"seeds must be a list or range of at most {MAX_SEEDS} whole numbers")
    seeds = tuple(seeds)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ExactdynError("seeds must be whole numbers >= 0")
    if not seeds:
        raise ExactdynError("give at least one seed")
    alpha = tuple(float(a) for a in alpha)
    if any(not np.isfinite(a) or a < 0 for a in alpha) or list(alpha) != sorted(alpha):
        raise ExactdynError("alpha must be finite, >= 0 and increasing")
    return seeds, alpha


def group_sizes(fractions, N):
    sizes = [f * N for f in fractions]
    rounded = [int(round(s)) for s in sizes]
    if any(abs(s - r) > 1e-9 for s, r in zip(sizes, rounded)) or min(rounded) < 1:
        raise ExactdynError(f"N = {N} does not split into the eigenvalue groups (fractions x N must be whole)")
    return rounded


def simulate(structure, eigenvalues, fractions, eta, alpha, *, N, seeds, sigma_J=0.0, init_seed=None,
             progress=False):
    """One-pass SGD for each seed; `structure` gives activation, widths, output weights and loss.

    Each seed draws its own teacher and student, unless `init_seed` is given: then every seed
    starts from the one draw of `init_seed` (same initial overlaps) and only the data differ."""
    K, M = structure.K, structure.M
    seeds, alpha = _run_arguments(N, eta, seeds, alpha)
    steps = [int(round(a * N)) for a in alpha]
    if steps[-1] > MAX_STEPS:
        raise ExactdynError(f"alpha = {alpha[-1]} at N = {N} is more than {MAX_STEPS} SGD steps")
    sizes = group_sizes(fractions, N)
    diag = np.repeat(np.asarray(eigenvalues, float), sizes)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    g, dg = structure.activation.numeric_g, structure.activation.numeric_dg
    v = float(output_weight(structure.output_weights, K))
    w = float(output_weight(structure.teacher_output_weights, M))
    c = float(structure.loss_factor)
    S = len(seeds)
    rngs = [np.random.default_rng(s if init_seed is None else init_seed) for s in seeds]
    B = np.stack([r.normal(size=(M, N)) for r in rngs])
    J = np.stack([sigma_J * r.normal(size=(K, N)) for r in rngs])
    data_rng = [np.random.default_rng([s, 1]) for s in seeds]
    sqrt_diag, scale, inv_sqrt_n = np.sqrt(diag), eta / np.sqrt(N), 1 / np.sqrt(N)

    def overlaps():
        onehot = np.eye(len(sizes))[groups]  # N x L
        r = np.einsum("skn,smn,nl->slkm", J, B, onehot) / N
        q = np.einsum("skn,sjn,nl->slkj", J, J, onehot) / N
        return r, q

    t = np.einsum("smn,spn,nl->slmp", B, B, np.eye(len(sizes))[groups]) / N
    rs, qs = [], []
    done = 0
    width = max(1, min(1024, BUFFER // (S * N)))  # inputs drawn `width` steps at a time
    inputs = np.empty((S, width, N))
    bar = _progress(steps[-1], progress)
    for stop in steps:
        while done < stop:
            chunk = min(stop - done, width)
            for buf, rg in zip(inputs, data_rng):
                rg.standard_normal(out=buf[:chunk])
                buf[:chunk] *= sqrt_diag
            xis = inputs[:, :chunk]
            # teacher outputs for the whole chunk at once; the student's need the current J
            zetas = w * g(np.matmul(xis, np.swapaxes(B, 1, 2)) * inv_sqrt_n).sum(2)  # S x chunk
            for step in range(chunk):  # overflow is caught below as a diverged run
                xi, zeta = xis[:, step], zetas[:, step]
                x = np.matmul(J, xi[:, :, None])[:, :, 0] * inv_sqrt_n
                delta = 2 * c * v * dg(x) * (zeta - v * g(x).sum(1))[:, None]
                J += scale * delta[:, :, None] * xi[:, None, :]
            done += chunk
            bar.update(chunk)
        r, q = overlaps()
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
            raise ExactdynError(f"the SGD run diverged before alpha = {alpha[len(rs)]} (eta past the stability limit?)")
        rs.append(r)
        qs.append(q)
    bar.close()
    return Simulation(alpha, N, seeds, tuple(eigenvalues), tuple(fractions), np.array(rs), np.array(qs), t)


def eps_g_of(simulation, structure, eta):
    """eps_g[a, s] of each simulated state: the derived eps_g of `structure`, compiled by the engine."""
    from ..numeric import engine
    from ..numeric.overlaps import assign, overlap_table
    from ..symbolic.cache import derive

    system = derive(structure, "mode")
    lam, frac = list(simulation.eigenvalues), list(simulation.fractions)
    A, S = len(simulation.alpha), len(simulation.seeds)
    rows = [assign(system, overlap_table(lam, frac, simulation.r[a, s], simulation.q[a, s], simulation.t[s], eta))
            for a in range(A) for s in range(S)]
    states, params = [y for y, _ in rows], [p for _, p in rows]
    if isinstance(structure.activation, QuadratureActivation):  # tanh, sigmoid: eps_g by quadrature
        from ..numeric.quadrature import eps_g_float

        values = eps_g_float(system, states, params)
    else:
        values = engine.eps_g_float(engine.compile_system(system), states, params)
    return np.asarray(values).reshape(A, S)


@dataclass(frozen=True)
class SimulatedCurve:
    """A Simulation with eps_g[a, s] of every seed, their mean and standard error (NaN for one seed)."""

    simulation: Simulation
    eps_g: np.ndarray

    @property
    def mean(self):
        return self.eps_g.mean(1)

    @property
    def stderr(self):
        S = self.eps_g.shape[1]
        return self.eps_g.std(1, ddof=1) / np.sqrt(S) if S > 1 else np.full(self.eps_g.shape[0], np.nan)


CHAIN_FROM_N = 4096  # method="auto" runs the overlap chain from this N on (see simulate_curve)


def simulate_curve(problem, alpha, *, N, seeds, sigma_J=0.0, init_seed=None, progress=False, method="auto"):
    """One-pass SGD of `problem` (an exactdyn Problem) and its eps_g along the way: a SimulatedCurve.

    method "full" runs the N-dimensional SGD (`simulate`), "chain" the exact per-group overlap chain
    (`chain.simulate_groups`: the same law, from the same weight draws, at a cost independent of N);
    "auto" takes the chain when N >= CHAIN_FROM_N and it applies (an erf or polynomial activation, more
    than K + M directions in every eigenvalue group), the full simulation otherwise."""
    from ..numbers import to_fraction

    sigma = to_fraction(sigma_J, "sigma_J")
    if sigma < 0:
        raise ExactdynError(f"sigma_J must be >= 0, got {sigma_J}")
    if method not in ("auto", "full", "chain"):
        raise ExactdynError(f"method must be auto, full or chain, got {method!r}")
    lam, frac = problem.spectrum.floats()
    big = isinstance(N, int) and not isinstance(N, bool) and N >= CHAIN_FROM_N
    if method == "full" or (method == "auto" and not big):
        run = simulate
    else:
        from .chain import chain_applies, simulate_groups

        run = simulate_groups if method == "chain" or chain_applies(problem.structure, frac, N) else simulate
    sim = run(problem.structure, lam, frac, float(problem.eta), alpha, N=N, seeds=seeds, sigma_J=float(sigma),
              init_seed=init_seed, progress=progress)
    return SimulatedCurve(sim, eps_g_of(sim, problem.structure, float(problem.eta)))


def _progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="step", desc="SGD", leave=False)


# --- isotropic inputs: the exact overlap chain --------------------------------------------------------
#
# With xi ~ N(0, I_N) fresh at every step, the fields v = (J xi, B xi)/sqrt(N) are exactly Gaussian
# with covariance C = [[Q, R], [R^T, T]] (the current overlaps, at finite N), and |xi|^2 splits
# into |z|^2 (z the standard normals behind v = chol(C) z) plus an independent chi^2_{N-K-M}.  So
# one-pass SGD moves the (K+M) x (K+M) overlap matrix as a Markov chain whose law is that of the
# N-dimensional simulation, at a cost independent of N.

def simulate_isotropic(structure, eta, alpha, *, N, seeds, initial, progress=False):
    """One-pass SGD on isotropic inputs (Sigma = I) through the exact overlap chain (numba), for any
    N at a cost independent of N.  `initial` is (R0 (K x M), Q0 (K x K), T0 (M x M)) shared by all
    seeds, or a callable seed -> that triple.  Returns a Simulation with one eigenvalue group."""
    K, M = structure.K, structure.M
    if structure.L != 1:
        raise ExactdynError("the overlap chain is for isotropic inputs (one eigenvalue group, L = 1)")
    seeds, alpha = _run_arguments(N, eta, seeds, alpha)
    records = np.array([int(round(a * N)) for a in alpha], dtype=np.int64)
    act = structure.activation
    is_erf = isinstance(act, Erf)
    coeffs = np.array([0.0] if is_erf else [float(x) for x in act.coeffs])
    if not is_erf and not isinstance(act, Polynomial):
        raise ExactdynError(f"no numeric form for activation {act!r}")
    v = float(output_weight(structure.output_weights, K))
    w = float(output_weight(structure.teacher_output_weights, M))
    from .chain import run_isotropic


    def one_seed(s):
        R0, Q0, T0 = (initial(s) if callable(initial) else initial)
        C0 = np.block([[np.asarray(Q0, float), np.asarray(R0, float)], [np.asarray(R0, float).T, np.asarray(T0, float)]])
        if C0.shape != (K + M, K + M):
            raise ExactdynError(f"the initial overlaps must be R {K} x {M}, Q {K} x {K}, T {M} x {M}")
        out, done = run_isotropic(C0, K, records, float(eta), N, v, w, float(structure.loss_factor), coeffs, is_erf, int(s))
        if done < records[-1]:
            raise ExactdynError(f"seed {s}: the overlaps lost positive definiteness after {done} steps "
                                "(the run diverged: eta past the stability limit?)")
        return out

    # each run seeds its own thread's generator, so the result does not depend on the thread count
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outs = list(_progress_iter(pool.map(one_seed, seeds), progress, total=len(seeds)))
    rs = [out[:, None, :K, K:] for out in outs]
    qs = [out[:, None, :K, :K] for out in outs]
    ts = [out[0, None, K:, K:] for out in outs]
    return Simulation(alpha, N, seeds, (1.0,), (1.0,), np.stack(rs, 1), np.stack(qs, 1), np.stack(ts))


def orthonormal_initial(K, M, N, seed):
    """Overlaps of the quadratic-network paper's start: students and teacher each orthonormal with
    norm sqrt(N), drawn independently, so Q = I, T = I and R ~ N(0, 1/N) (a finite-N draw)."""
    rng = np.random.default_rng(seed)
    if K + M > N:
        raise ExactdynError("orthonormal students and teacher need N >= K + M")
    J = np.linalg.qr(rng.normal(size=(N, K)))[0].T
    B = np.linalg.qr(rng.normal(size=(N, M)))[0].T
    return J @ B.T, np.eye(K), np.eye(M)


def _progress_iter(items, enabled, total=None):
    from tqdm import tqdm

    return tqdm(items, disable=not enabled, unit="seed", desc="SGD", leave=False, total=total)
