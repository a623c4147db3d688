"""Sweeps behind notebooks/erf_plateau.ipynb: the erf committee machine's symmetric plateau (height,
escape rate, measured escape) against L and K, drawn teachers, and the late-time exponent against eta.

    python bench/plateau_sweep.py rates escape heights late     (any subset; about an hour in all on a loaded 2-core machine)

Writes notebooks/data/erf_plateau_<section>.csv.  Every number is float64: the plateau by
`float64_plateau` (tests/test_escape.py checks it against the MPFR `find_plateau`), the curves by
`exactdyn.solve` (float64 engine, each point's verified digits in the CSV where it matters).
"""
from fractions import Fraction
from pathlib import Path
import csv
import sys
import time

import numpy as np

from exactdyn import InitialState, Problem, power_law, solve
from exactdyn.numeric.plateau import float64_plateau, plateau_length
from exactdyn.problem import exact

DATA = Path(__file__).resolve().parent.parent / "notebooks" / "data"
ETA, BETA, SIGMA_J = Fraction(1, 10), 1, Fraction(1, 100)
RATE_CASES = [(2, L) for L in (1, 2, 4, 8, 16, 32, 64, 128)] + [(K, L) for K in (3, 4) for L in (1, 2, 4, 8, 16, 32, 64)]
ESCAPE_CASES = [(2, L) for L in (1, 2, 4, 8, 16, 32, 64)] + [(K, L) for K in (3, 4) for L in (1, 4, 16)]
PLATEAU_DEVIATIONS = (Fraction(1, 10 ** 3), Fraction(1, 10 ** 7))   # start on the plateau, r moved by d0 rho_k G
START_PERTURBATIONS = (Fraction(1, 10 ** 5), Fraction(1, 10 ** 8))  # InitialState.expected's symmetry-breaking r
BAND = Fraction(1, 20)
HEIGHT_LS, HEIGHT_SEEDS, HEIGHT_N = (1, 2, 4, 8, 16, 32), range(8), 4096
LATE = [(256, 1, eta) for eta in (Fraction(1, 20), Fraction(1, 10), Fraction(3, 10))]
LATE_ALPHA = np.logspace(0, 5, 81)


def problem(K, L, beta=BETA, eta=ETA):
    return Problem("erf", K, K, power_law(L, beta), eta)


def write(name, rows):
    path = DATA / f"erf_plateau_{name}.csv"
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    print("wrote", path, flush=True)


def rates():
    rows = []
    for K, L in RATE_CASES:
        started = time.perf_counter()
        p = problem(K, L)
        pl = float64_plateau(p)
        rows.append(dict(K=K, L=L, eta=float(ETA), beta=BETA, lambda_1=float(exact(p.spectrum.eigenvalues[0])),
                         height=repr(pl.eps_g), escape_rate=repr(pl.escape_rate)))
        print(rows[-1], f"{time.perf_counter() - started:.0f} s", flush=True)
    write("rates", rows)


def escape():
    rows = []
    for K, L in ESCAPE_CASES:
        started = time.perf_counter()
        p = problem(K, L)
        pl = float64_plateau(p)
        alpha = np.linspace(0, 40 / pl.escape_rate, 4001)
        starts = [("plateau", d, pl.start(p, d)) for d in PLATEAU_DEVIATIONS]
        starts += [("expected", d, InitialState.expected(p, SIGMA_J, perturbation=d)) for d in START_PERTURBATIONS]
        for kind, d, start in starts:
            sol = solve(p, start, alpha.tolist())
            found = plateau_length(alpha, sol.floats(), pl.eps_g, BAND)
            entry, exit_ = found if found else (float("nan"), float("nan"))
            rows.append(dict(K=K, L=L, start=kind, deviation=float(d), entry=entry, exit=exit_,
                             escape_rate=repr(pl.escape_rate), height=repr(pl.eps_g), digits=min(sol.digits)))
            print(rows[-1], flush=True)
        print(f"K = {K}, L = {L}: {time.perf_counter() - started:.0f} s", flush=True)
    write("escape", rows)


def heights():
    rows = []
    for L in HEIGHT_LS:
        p = problem(2, L)
        for seed in HEIGHT_SEEDS:
            t = InitialState.draw(p, HEIGHT_N, seed=seed).t
            pl = float64_plateau(p, t)
            rows.append(dict(K=2, L=L, N=HEIGHT_N, seed=seed, height=repr(pl.eps_g), escape_rate=repr(pl.escape_rate)))
            print(rows[-1], flush=True)
    write("heights", rows)


def late():
    rows = []
    for L, beta, eta in LATE:
        started = time.perf_counter()
        p = problem(2, L, beta, eta)
        sol = solve(p, InitialState.expected(p, Fraction(1, 2)), [0] + LATE_ALPHA.tolist())
        for a, e, d in zip(LATE_ALPHA, sol.floats()[1:], sol.digits[1:]):
            rows.append(dict(L=L, beta=beta, eta=float(eta), alpha=a, eps_g=repr(e), digits=d))
        print(f"L = {L}, beta = {beta}, eta = {eta}: {time.perf_counter() - started:.0f} s", flush=True)
    write("late", rows)


if __name__ == "__main__":
    sections = {"rates": rates, "escape": escape, "heights": heights, "late": late}
    asked = sys.argv[1:] or list(sections)
    unknown = [s for s in asked if s not in sections]
    if unknown:
        sys.exit(f"unknown section(s) {unknown}: choose from {list(sections)}")
    for name in asked:
        sections[name]()
