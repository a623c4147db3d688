"""Numbers for a derived system's symbols, from overlaps per eigenvalue group.

``r[k][i][n] = J_i P_k B_n / N``, ``q[k][i][j]``, ``t[k][n][m]`` with the eigenvalues ``lam[k]``
and fractions ``frac[k]`` of the input dimension; the moment basis follows by the exact map
``X^(l) = sum_k lam_k^l x^k``.  Works with any number type (float, mpf, arb, fmpq).
"""
from ..errors import ExactdynError


def overlap_table(lam, frac, r, q, t, eta, coefficients=None):
    """name -> value for every symbol of the mode and moment systems of these overlaps.

    ``coefficients`` (c_0..c_{L-1}) are needed for the moment basis; the traces come from lam, frac.
    Without them only the mode system's names are filled: the moment entries are O(L^2) exact sums.
    """
    L = len(lam)
    K, M = len(r[0]), len(r[0][0])
    table = {"eta": eta}
    for k in range(L):
        table[f"lam{k + 1}"] = lam[k]
        table[f"frac{k + 1}"] = frac[k]
    for kind, blocks, rows, cols in (("r", r, K, M), ("q", q, K, K), ("t", t, M, M)):
        for k in range(L):
            for a in range(rows):
                for b in range(cols):
                    table[f"{kind}{k + 1}_{a + 1}_{b + 1}"] = blocks[k][a][b]
    if coefficients is None:
        return table
    for j, c in enumerate(coefficients):
        table[f"c{j}"] = c
    powers = list(lam)
    for order in range(1, L + 2):
        table[f"tau{order}"] = sum(f * p for f, p in zip(frac, powers))
        if order <= L:
            for kind, mkind, blocks, rows, cols in (("R", "r", r, K, M), ("Q", "q", q, K, K), ("T", "t", t, M, M)):
                for a in range(rows):
                    for b in range(cols):
                        table[f"{kind}{order}_{a + 1}_{b + 1}"] = sum(
                            p * blocks[k][a][b] for k, p in enumerate(powers))
        powers = [p * x for p, x in zip(powers, lam)]
    return table


def assign(system, table):
    """(state values, param values) in the system's order, looked up by symbol name."""
    missing = [str(s) for s in (*system.states, *system.params) if str(s) not in table]
    if missing:
        raise ExactdynError(f"no value for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return [table[str(s)] for s in system.states], [table[str(p)] for p in system.params]
