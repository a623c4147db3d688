"""Linear networks: cost of the certified 30-digit curve against a float64 dense-eigh baseline.

Run: python bench/bench_linear.py [L ...]   (default 250 500 1000 2000 4000)
Both timings come from the same run on the same machine; the table reports their ratio.  The
moment route needs O(L log L)-bit arithmetic and is timed up to --moment-max (default 500).
"""
import argparse
import time

import numpy as np

from exactdyn import power_law
from exactdyn.numeric.linear import solve_linear

ALPHA = [1, 10, 100, 1000]
ETA = 0.5


def baseline(L):
    """float64: the same dynamics as a dense L x L matrix, diagonalised with eigh."""
    lam = L * np.arange(1, L + 1, dtype=float) ** -2.0
    lam = lam / lam.mean()
    rho = np.full(L, 1.0 / L)
    d0 = rho.copy()
    # dd/dalpha = (-2 eta diag(lam) + eta^2 (lam rho) lam^T) d, symmetrised by diag(sqrt(rho)) scaling
    s = np.sqrt(rho)
    A = -2 * ETA * np.diag(lam) + ETA ** 2 * np.outer(lam * s, lam * s)
    w, V = np.linalg.eigh(A)
    y0 = V.T @ (d0 / s)
    out = [0.5 * (lam * s) @ (V @ (np.exp(w * a) * y0)) for a in ALPHA]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("L", nargs="*", type=int, default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--moment-max", type=int, default=500)
    args = parser.parse_args()
    rows = []
    print(f"{'L':>6} {'float64 eigh s':>15} {'mode route s':>13} {'ratio':>7} {'moment route s':>15}")
    for L in args.L:
        t = time.perf_counter()
        approx = baseline(L)
        t_base = time.perf_counter() - t
        spec = power_law(L, 1)
        t = time.perf_counter()
        mode = solve_linear(spec, "0.5", ALPHA, digits=30, route="mode")
        t_mode = time.perf_counter() - t
        t_moment = float("nan")
        if L <= args.moment_max:
            t = time.perf_counter()
            solve_linear(spec, "0.5", ALPHA, digits=30, route="moment")
            t_moment = time.perf_counter() - t
        rel = max(abs(a / float(e.mid()) - 1) for a, e in zip(approx, mode.eps_g))
        rows.append((L, t_base, t_mode, t_moment))
        print(f"{L:>6} {t_base:>15.3f} {t_mode:>13.3f} {t_mode / t_base:>7.1f} {t_moment:>15.3f}"
              f"   (float64 rel. error {rel:.1e})", flush=True)
    if len(rows) >= 2:
        Ls = np.log([r[0] for r in rows])
        print(f"growth exponents: float64 {np.polyfit(Ls, np.log([r[1] for r in rows]), 1)[0]:.2f}, "
              f"mode route {np.polyfit(Ls, np.log([r[2] for r in rows]), 1)[0]:.2f}")


if __name__ == "__main__":
    main()
