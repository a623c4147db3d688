"""The long runs behind notebooks/quadratic_paper.ipynb, written as small CSVs in notebooks/data/.

Run: python bench/quadratic_paper_runs.py [etaopt] [offdiagonal] [sdrift]   (default: all three)

- etaopt: the quadratic-network paper's Fig. 2.  For p* = 3 and p = 3..8, alpha_c (the alpha at
  which the risk first halves) along the ODE with its eta^2 terms, for 10 initial states
  rho_kl ~ N(0, 1e-4), Q = I (the paper's Eq. 8, eps = 1e-2) on a grid of eta / p.  Rows:
  p, init, eta, alpha_c (inf: the risk never halves by t = eta alpha = 1000).
- offdiagonal: the paper's Fig. 1 setting (p = 6, p* = 3, eta = 0.01, 10 data seeds from one
  orthonormal draw) at N = 2000 (the paper: 10^4), finite-N SGD through the exact overlap chain to
  alpha = 1200; every overlap per seed.
- sdrift: S = rho (rho^T rho)^{-1/2} under SGD against N: p = 6, p* = 3, eta = 0.1, a fixed
  rho(0) = 0.05 G (G standard normal, seed 7), Q(0) = I, alpha to 100 (past the escape at ~67),
  N = 250..4000, 12 seeds each; max |S(alpha) - S(0)| per seed at each recorded alpha.
"""
import csv
import sys
import time
from pathlib import Path

import numpy as np

from exactdyn.models.quadratic import half_risk_time, s_matrix
from exactdyn.simulate.sgd import orthonormal_initial, simulate_isotropic
from exactdyn.symbolic.hierarchy import Structure

DATA = Path(__file__).resolve().parents[1] / "notebooks" / "data"

ETAOPT_PSTAR, ETAOPT_WIDTHS, ETAOPT_INITS, ETAOPT_EPS = 3, (3, 4, 5, 6, 7, 8), 10, 1e-2
ETAOPT_GRID = np.round(np.arange(0.0675, 0.1426, 0.0075), 4)  # eta / p
FIG1 = dict(p=6, pstar=3, eta=0.01, N=2000, seeds=10, draw=2)
FIG1_ALPHA = [0, 1, 3, 10, 30, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200]
SDRIFT = dict(p=6, pstar=3, eta=0.1, eps=0.05, seed=7, seeds=12, N=(250, 500, 1000, 2000, 4000))
SDRIFT_ALPHA = [0, 20, 40, 60, 80, 100]


def etaopt_initial(p, init):
    """The paper's Eq. (8) initial state, one per (p, init): rho ~ N(0, eps^2), Q = I."""
    return ETAOPT_EPS * np.random.default_rng([p, init]).normal(size=(p, ETAOPT_PSTAR)), np.eye(p)


def alpha_c(p, init, eta):
    rho0, Q0 = etaopt_initial(p, init)
    return half_risk_time(rho0, Q0, eta) / eta


def run_etaopt():
    rows = []
    for p in ETAOPT_WIDTHS:
        start = time.time()
        for init in range(ETAOPT_INITS):
            for x in ETAOPT_GRID:
                eta = round(float(x) * p, 6)
                rows.append((p, init, eta, alpha_c(p, init, eta)))
        print(f"etaopt p = {p}: {time.time() - start:.0f} s", flush=True)
    _write("quadratic_etaopt.csv", ("p", "init", "eta", "alpha_c"), rows)


def run_offdiagonal():
    p, ps, N = FIG1["p"], FIG1["pstar"], FIG1["N"]
    start = orthonormal_initial(p, ps, N, FIG1["draw"])
    t0 = time.time()
    sim = simulate_isotropic(Structure.named("quadratic", p, ps, 1), FIG1["eta"], FIG1_ALPHA, N=N,
                             seeds=range(FIG1["seeds"]), initial=start)
    print(f"offdiagonal: {time.time() - t0:.0f} s", flush=True)
    names = [f"rho_{k}_{l}" for k in range(p) for l in range(ps)] + \
            [f"Q_{k}_{j}" for k in range(p) for j in range(k, p)]
    rows = []
    for a, alpha in enumerate(sim.alpha):
        for s in sim.seeds:
            r, q = sim.r[a, s, 0], sim.q[a, s, 0]
            rows.append((alpha, s, *r.ravel(), *(q[k, j] for k in range(p) for j in range(k, p))))
    _write("quadratic_fig1_sgd.csv", ("alpha", "seed", *names), rows)


def sdrift_initial():
    rng = np.random.default_rng(SDRIFT["seed"])
    return SDRIFT["eps"] * rng.normal(size=(SDRIFT["p"], SDRIFT["pstar"])), np.eye(SDRIFT["p"]), np.eye(SDRIFT["pstar"])


def run_sdrift():
    p, ps = SDRIFT["p"], SDRIFT["pstar"]
    start = sdrift_initial()
    S0 = s_matrix(start[0])
    rows = []
    for N in SDRIFT["N"]:
        t0 = time.time()
        sim = simulate_isotropic(Structure.named("quadratic", p, ps, 1), SDRIFT["eta"], SDRIFT_ALPHA, N=N,
                                 seeds=range(SDRIFT["seeds"]), initial=start)
        for a, alpha in enumerate(sim.alpha):
            for s in sim.seeds:
                rows.append((N, alpha, s, float(np.abs(s_matrix(sim.r[a, s, 0]) - S0).max())))
        print(f"sdrift N = {N}: {time.time() - t0:.0f} s", flush=True)
    _write("quadratic_s_drift.csv", ("N", "alpha", "seed", "drift"), rows)


def _write(name, header, rows):
    DATA.mkdir(parents=True, exist_ok=True)
    with open(DATA / name, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for row in rows:
            out.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])


if __name__ == "__main__":
    jobs = {"etaopt": run_etaopt, "offdiagonal": run_offdiagonal, "sdrift": run_sdrift}
    chosen = sys.argv[1:] or list(jobs)
    unknown = [c for c in chosen if c not in jobs]
    if unknown:
        sys.exit(f"unknown job(s) {unknown}; choose from {list(jobs)}")
    for job in chosen:
        jobs[job]()
