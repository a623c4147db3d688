"""The arbitrary-precision path for nonlinear networks: against float64, and across the two bases."""
import json

import pytest

from exactdyn import Structure, power_law
from exactdyn.cli import main
from exactdyn.numeric.committee import expected_initial, integrate
from exactdyn.numeric.highprec import integrate_mp


def _initial(L):
    lam, frac = power_law(L, 1).floats()
    return expected_initial(lam, frac, 2, 2, 0.5, perturbation=0.1)


@pytest.mark.slow
def test_high_precision_agrees_with_float64_where_float64_is_valid():
    structure = Structure.named("erf", 2, 2, 4)
    init = _initial(4)
    alpha = [0, 0.5, 1]
    fast = integrate(structure, init, 0.5, alpha)
    exact = integrate_mp(structure, init, "0.5", alpha, digits=20)
    assert exact.digits == 20 and fast.verified_digits >= 7
    for f, e in zip(fast.eps_g, exact.eps_g):
        assert abs(f - float(e)) <= 10.0 ** (1 - fast.verified_digits) * abs(float(e))


@pytest.mark.slow
@pytest.mark.parametrize("L, alpha, digits", [(16, [0, 0.25], 20), (64, [0, 0.05], 15)])
def test_moment_and_mode_bases_agree_at_high_precision(L, alpha, digits):
    """The moment hierarchy (Cayley-Hamilton closure, ill-conditioned in float64 from L ~ 8) and
    the eigenmode system give the same digits at L = 16 and L = 64."""
    structure = Structure.named("erf", 2, 2, L)
    init = _initial(L)
    mode = integrate_mp(structure, init, "0.5", alpha, digits=digits, basis="mode")
    moment = integrate_mp(structure, init, "0.5", alpha, digits=digits, basis="moment")
    assert mode.decimals() == moment.decimals()


def test_solve_digits_selects_the_high_precision_path(tmp_path, capsys):
    init = tmp_path / "init.json"
    init.write_text(json.dumps({"eigenvalues": [2, 1], "weights": ["1/3", "2/3"], "r": [[[0.1]], [["1/20"]]],
                                "q": [[[0.2]], [[0.3]]], "t": [[["1/3"]], [["2/3"]]]}))
    base = ["solve", "--activation", "erf", "--K", "1", "--M", "1", "--eta", "0.5", "--init", str(init),
            "--alpha", "0,1,2", "--format", "json"]
    assert main(base) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main(base + ["--digits", "25"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["metadata"]["verified_digits"] == 25 and "Bulirsch" in exact["metadata"]["route"]
    digits = fast["metadata"]["verified_digits"]
    for f, e in zip(fast["eps_g"], exact["eps_g"]):
        assert abs(float(f) - float(e)) <= 10.0 ** (1 - digits) * float(e)
    assert main(["solve", "--activation", "erf", "--K", "1", "--M", "1", "--eta", "0.5", "--L", "3", "--beta", "0.5",
                 "--alpha", "0,1", "--digits", "20"]) == 2
    assert "exact spectrum" in capsys.readouterr().err
