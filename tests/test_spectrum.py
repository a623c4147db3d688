import json

import flint
import mpmath
import pytest

from exactdyn import ExactdynError, from_eigenvalues, power_law
from exactdyn.cli import main


def _spectrum_json(capsys, *args):
    assert main(["spectrum", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _q(text):
    p, _, q = text.partition("/")
    return flint.fmpq(flint.fmpz(p), flint.fmpz(q or "1"))


@pytest.mark.parametrize("L", [5, 40, 200])
def test_coefficients_have_exactly_the_eigenvalues_as_roots(L, capsys):
    data = _spectrum_json(capsys, "--L", str(L), "--beta", "1")
    lam = [_q(x) for x in data["eigenvalues"]]
    assert len(lam) == L and lam == sorted(lam, reverse=True) and len(set(lam)) == L
    poly = flint.fmpq_poly([_q(c) for c in data["coefficients"]] + [1])
    assert poly.degree() == L
    assert all(poly(x) == 0 for x in lam)  # L distinct roots of a degree-L polynomial: exactly these
    # Independent of exactdyn: lambda_l proportional to l^-2 with mean 1.
    assert sum(lam) == L and all(lam[0] == lam[l - 1] * l ** 2 for l in range(1, L + 1))


@pytest.mark.parametrize("L", [5, 40, 200])
def test_traces_exact_to_twice_L(L):
    spec = power_law(L, 1)
    lam = spec.eigenvalues
    taus = spec.traces(2 * L)
    assert len(taus) == 2 * L
    for k in (1, 2, 3, L, L + 1, 2 * L) if L > 5 else range(1, 2 * L + 1):
        assert taus[k - 1] == sum((x ** k for x in lam), flint.fmpq(0)) / L


def test_irrational_spectrum_balls_contain_100_digit_recomputation():
    L = 12
    spec = power_law(L, "0.5", prec=400)
    with mpmath.workdps(100):
        base = [mpmath.mpf(l) ** mpmath.mpf("-1.5") for l in range(1, L + 1)]
        scale = L / mpmath.fsum(base)
        lam = [scale * b for b in base]
        taus = [mpmath.fsum(x ** k for x in lam) / L for k in range(1, L + 2)]
        poly = [mpmath.mpf(1)]
        for x in lam:  # multiply by (z - x), coefficients lowest first
            poly = [-x * poly[0]] + [poly[j - 1] - x * poly[j] for j in range(1, len(poly))] + [poly[-1]]
        # the reference as a ball covering its own rounding to 100 digits
        digits = lambda v: flint.arb(mpmath.nstr(v, 100, min_fixed=-1, max_fixed=-1), abs(v) * 1e-99)
    with flint.ctx.workprec(400):
        for ball, ref in zip(spec.eigenvalues, lam):
            assert ball.overlaps(digits(ref)) and ball.rad() < 1e-100
        for ball, ref in zip(spec.traces(L + 1), taus):
            assert ball.overlaps(digits(ref)) and ball.rad() < abs(digits(ref)) * 1e-90
        for ball, ref in zip(spec.coefficients(), poly[:L]):
            assert ball.overlaps(digits(ref))


def test_companion_matrix_has_vandermonde_eigenvectors():
    spec = power_law(6, 2)
    C = spec.companion_matrix()
    for lam in spec.eigenvalues:
        v = flint.fmpq_mat([[lam ** j] for j in range(6)])
        assert C * v == v * lam


def test_custom_spectrum_validation():
    s = from_eigenvalues(["1/2", 2, "0.25"], ["1/4", "1/2", "1/4"])
    assert s.eigenvalues == (2, flint.fmpq(1, 2), flint.fmpq(1, 4))
    assert s.weights == (flint.fmpq(1, 2), flint.fmpq(1, 4), flint.fmpq(1, 4))
    assert s.trace(1) == 1 + flint.fmpq(1, 8) + flint.fmpq(1, 16)
    for bad in ([1, 1], [1, -2], [], ["x"]):
        with pytest.raises(ExactdynError):
            from_eigenvalues(bad)
    with pytest.raises(ExactdynError):
        from_eigenvalues([1, 2], ["1/2", "1/3"])
    with pytest.raises(ExactdynError):
        power_law(4, "0.5")  # irrational without a precision
