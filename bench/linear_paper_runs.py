"""Long runs behind notebooks/linear_paper.ipynb (the linear-network results of "Analyzing Neural Scaling
Laws in Two-Layer Networks with Power-Law Data Spectra").

    python bench/linear_paper_runs.py edge   # the power-law window's edges  -> notebooks/data/linear_window_edge.csv
    python bench/linear_paper_runs.py sgd    # SGD in the power-law regime    -> notebooks/data/linear_sgd_eta*.csv

edge: for each (beta, L, eta) the certified local exponent s(alpha) = d ln eps_g / d ln alpha of the exact
curve (`solve_linear`, expected initial state, sigma_J = 0) is bisected in ln alpha for the points where it
leaves the band |s/s0 - 1| <= delta, s0 = -beta/(1+beta), delta = 5% and 10%: the window is the longest
interval ending at the last grid point inside the band (16 points per decade) on which s stays inside on the
grid.  At small alpha the top modes' discreteness makes s oscillate around s0, so a narrow excursion between
grid points could be missed there.  Bisection stops at a relative
width 1e-6 of alpha; the CSV keeps 6 digits.

sgd: one-pass SGD of the linear network (K = M = 1, beta = 1, L = 16, eta = 0.05 and 0.5, N = 8192, sigma_J = 0,
6 seeds, alpha to 1000) through the exact per-group overlap chain (`exactdyn.simulate.chain.simulate_groups`,
cost independent of N but proportional to L: about 2 microseconds per group and step on a loaded 2-core
machine, which is what limits L here); eps_g per seed at each recorded alpha.
"""
import argparse
import csv
from fractions import Fraction
import math
from pathlib import Path
import sys
import time

import numpy as np

from exactdyn import power_law
from exactdyn.numeric.linear import solve_linear

DATA = Path(__file__).resolve().parent.parent / "notebooks" / "data"
EDGE_CASES = [(beta, L, eta) for beta in ("1/2", "1", "2") for L in (32, 64, 128, 256, 512, 1024)
              for eta in ("0.05",)] + [("1", L, "0.5") for L in (64, 256, 1024)]
DELTAS = (0.05, 0.10)


def spectrum_of(L, beta):
    b = Fraction(beta)
    return power_law(L, b) if b.denominator == 1 else power_law(L, b, prec=512)


def slope(sol, alpha):
    """The certified local exponent at alpha as a float (its ball is far narrower than the bisection's steps)."""
    ball = sol.slope_at(Fraction(alpha))
    if float(ball.rad()) > 1e-9:
        raise RuntimeError(f"slope ball too wide at alpha = {alpha}")
    return float(ball.mid())


def bisect(sol, inside, a_in, a_out):
    """ln-alpha bisection between a grid point where inside(s) holds and a neighbour where it does not."""
    lo, hi = math.log(a_in), math.log(a_out)
    while abs(hi - lo) > 1e-6:
        mid = (lo + hi) / 2
        if inside(slope(sol, math.exp(mid))):
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def window(sol, s0, delta, grid, slopes):
    """The longest alpha interval reaching up to the last grid point within delta of s0 on which the local
    exponent stays within delta: (lower, upper), each end bisected."""
    inside = lambda s: abs(s / s0 - 1) <= delta
    top = max(i for i, s in enumerate(slopes) if inside(s))
    bottom = top
    while bottom > 0 and inside(slopes[bottom - 1]):
        bottom -= 1
    if bottom == 0:
        raise RuntimeError("the grid starts inside the window")
    return bisect(sol, inside, grid[bottom], grid[bottom - 1]), bisect(sol, inside, grid[top], grid[top + 1])


def edge_row(beta, L, eta):
    started = time.perf_counter()
    spec = spectrum_of(L, beta)
    sol = solve_linear(spec, eta, [1], digits=10)
    b, e = float(Fraction(beta)), float(Fraction(eta))
    lam_plus = spec.floats()[0][0]
    w0, edge = 1 / (2 * e * lam_plus), L ** (1 + b) / (2 * e * lam_plus)
    grid = list(np.logspace(math.log10(w0) - 2, math.log10(edge) + 1, int(16 * (math.log10(edge / w0) + 3)) + 1))
    slopes = [slope(sol, a) for a in grid]
    s0 = -b / (1 + b)
    row = {"beta": beta, "L": L, "eta": eta, "lambda_plus": f"{lam_plus:.10g}", "alpha_low_window": f"{w0:.10g}",
           "alpha_edge": f"{edge:.10g}"}
    for d in DELTAS:
        tag = round(100 * d)
        lower, upper = window(sol, s0, d, grid, slopes)
        row[f"alpha_lower_{tag}"], row[f"alpha_upper_{tag}"] = f"{lower:.6g}", f"{upper:.6g}"
    row["seconds"] = f"{time.perf_counter() - started:.1f}"
    return row


def run_edge(out):
    rows = []
    for case in EDGE_CASES:
        rows.append(edge_row(*case))
        print(rows[-1], flush=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


SGD_ALPHA = [0] + [round(10 ** (k / 3), 4) for k in range(-3, 10)]
SGD_CASES = [{"L": 16, "beta": 1, "eta": eta, "N": 8192, "seeds": 6, "alpha": SGD_ALPHA} for eta in ("0.05", "0.5")]


def run_sgd(out, case):
    """Per-seed eps_g at each alpha (one column per seed) and, in a second file, each seed's initial
    error overlaps d^k(0) = q - 2r + t per group, from which the exact curve for the mean starts."""
    from exactdyn import Problem
    from exactdyn.simulate.chain import simulate_groups

    started = time.perf_counter()
    problem = Problem("linear", 1, 1, power_law(case["L"], case["beta"]), case["eta"])
    lam, frac = problem.spectrum.floats()
    sim = simulate_groups(problem.structure, lam, frac, float(case["eta"]), case["alpha"], N=case["N"],
                          seeds=range(case["seeds"]))
    d = sim.q[..., 0, 0] - 2 * sim.r[..., 0, 0] + sim.t[None, ..., 0, 0]  # alpha, seed, group
    eps = 0.5 * (d * np.array(lam)).sum(-1)
    seconds = time.perf_counter() - started
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["alpha"] + [f"seed_{s}" for s in sim.seeds])
        for a, row in zip(case["alpha"], eps):
            writer.writerow([a] + [f"{x:.12e}" for x in row])
    with open(out.with_name(out.stem + "_initial.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group"] + [f"seed_{s}" for s in sim.seeds])
        for k in range(case["L"]):
            writer.writerow([k] + [f"{x:.17e}" for x in d[0, :, k]])
    print(f"L = {case['L']}, N = {case['N']}, {case['seeds']} seeds to alpha = {case['alpha'][-1]}: {seconds:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["edge", "sgd"])
    args = parser.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    if args.part == "edge":
        run_edge(DATA / "linear_window_edge.csv")
    else:
        for case in SGD_CASES:
            run_sgd(DATA / f"linear_sgd_eta{case['eta']}.csv", case)


if __name__ == "__main__":
    sys.exit(main())
