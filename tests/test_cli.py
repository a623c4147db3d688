"""Bad input: one line on stderr, exit status 2, never a traceback."""
import json
import subprocess
import sys

import pytest

from exactdyn.cli import main

BAD = {
    "L zero": ["spectrum", "--L", "0"],
    "L negative": ["spectrum", "--L", "-3"],
    "L not a number": ["spectrum", "--L", "many"],
    "L fractional": ["spectrum", "--L", "2.5"],
    "beta -1": ["spectrum", "--L", "4", "--beta", "-1"],
    "beta below -1": ["spectrum", "--L", "4", "--beta", "-2.5"],
    "beta nan": ["spectrum", "--L", "4", "--beta", "nan"],
    "beta inf": ["spectrum", "--L", "4", "--beta", "inf"],
    "beta text": ["spectrum", "--L", "4", "--beta", "one"],
    "beta empty": ["spectrum", "--L", "4", "--beta", ""],
    "unknown format": ["spectrum", "--L", "4", "--format", "xml"],
    "repeated eigenvalue": ["spectrum", "--eigenvalues", "1,1"],
    "negative eigenvalue": ["spectrum", "--eigenvalues", "1,-1"],
    "weights not summing to one": ["spectrum", "--eigenvalues", "1,2", "--weights", "1/2,1/3"],
    "weights without eigenvalues": ["spectrum", "--L", "3", "--weights", "1/3,1/3,1/3"],
    "both spectra": ["spectrum", "--L", "3", "--eigenvalues", "1,2"],
    "no spectrum": ["spectrum"],
    "zero denominator": ["spectrum", "--eigenvalues", "1/0,2"],
    "unknown activation": ["derive", "--activation", "relu"],
    "K zero": ["derive", "--K", "0"],
    "M zero": ["derive", "--M", "0"],
    "K huge": ["derive", "--K", "1000"],
    "L zero in derive": ["derive", "--L", "0"],
    "unknown output weights": ["derive", "--output-weights", "half"],
    "unknown derive format": ["derive", "--format", "pdf"],
    "constant polynomial": ["derive", "--poly", "1"],
    "polynomial text": ["derive", "--poly", "0,x**2"],
    "negative loss factor": ["derive", "--loss-factor", "-1"],
    "unknown command": ["integrate"],
    "no command": [],
    "unknown option": ["spectrum", "--L", "3", "--colour"],
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_bad_input_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("exactdyn: error: ") and "\n" not in err and "Traceback" not in err
    assert captured.out == ""


def test_console_script_and_module_entry_points():
    for cmd in (["exactdyn"], [sys.executable, "-m", "exactdyn"]):
        ok = subprocess.run(cmd + ["spectrum", "--L", "3", "--beta", "2", "--format", "json"],
                            capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stderr
        data = json.loads(ok.stdout)
        assert set(data) >= {"eigenvalues", "coefficients", "traces"} and len(data["traces"]) == 4
        bad = subprocess.run(cmd + ["spectrum", "--L", "0"], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_spectrum_text_and_irrational_json(capsys):
    assert main(["spectrum", "--L", "3", "--beta", "1"]) == 0
    assert "power law L=3" in capsys.readouterr().out
    assert main(["spectrum", "--L", "3", "--beta", "0.5", "--digits", "25", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exact"] is False and all(len(x.replace(".", "").lstrip("0")) <= 26 for x in data["eigenvalues"])
