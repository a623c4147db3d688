"""The symmetric plateau of the erf committee machine shortens as L grows.

K = M = 2, eta = 0.1, beta = 1, sigma_J = 0.01, initial overlaps of a finite-N draw (N = 1024,
seed 0), float64 eigenmode ODE.  Writes figures/plateau_vs_L.png and prints the measured
plateau (start, height, length) for each L.  Run: python figures/plateau_vs_L.py
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from exactdyn import Erf, Structure, power_law  # noqa: E402
from exactdyn.committee import finite_n_initial, integrate, plateau  # noqa: E402

LS = (1, 2, 4, 8, 16)
ALPHA = np.linspace(0, 3000, 1201)


def run(L):
    spec = power_law(L, 1)
    lam = [float(x) for x in spec.eigenvalues]
    init = finite_n_initial(lam, [1 / L] * L, 2, 2, 1024, 0, 0.01)
    traj = integrate(Structure(Erf(), 2, 2, L), init, 0.1, ALPHA, verify=False)
    return np.array(traj.eps_g)


def main(out=Path(__file__).with_suffix(".png")):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    lengths = []
    for L in LS:
        eps = run(L)
        found = plateau(ALPHA, eps)
        lengths.append(found[2] if found else np.nan)
        print(f"L = {L:>2}: plateau start, height, length = {found}")
        left.plot(ALPHA[1:], eps[1:], label=f"L = {L}")
    left.set_yscale("log")
    left.set_xlabel(r"$\alpha$")
    left.set_ylabel(r"$\epsilon_g$")
    left.set_title(r"erf, $K=M=2$, $\eta=0.1$, $\beta=1$, $\sigma_J=0.01$, $N=1024$ draw", fontsize=9)
    left.legend(fontsize=8)
    right.plot(LS, lengths, "o-")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("L (distinct eigenvalues)")
    right.set_ylabel("plateau length in $\\alpha$ (to half height)")
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
