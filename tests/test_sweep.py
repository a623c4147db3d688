"""exactdyn.sweep: a 100-point grid on a 2-worker LocalCluster, stopped part-way and resumed without
recomputing, failing points recorded, tables read back, and the CLI's one-line errors."""
from fractions import Fraction
import json
import math

import pandas as pd
import pytest

from exactdyn.cli import main
from exactdyn.errors import ExactdynError
from exactdyn.sweep import MAX_POINTS, sweep

# quadratic students diverge from eta ~ 0.3 on: those points fail, the erf ones do not
GRID = {"activation": ["erf", "quadratic"], "eta": [Fraction(k, 50) for k in range(1, 26)], "L": [1, 2],
        "K": [1], "M": [1]}
ALPHA = [0, 1, 2, 5]
FIRST = 40


def _records(path):
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), lines[1:]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """The sweep stopped after FIRST points (limit), then run again to the end, then a third time."""
    out = tmp_path_factory.mktemp("sweep") / "grid"
    first = sweep(GRID, alpha=ALPHA, out=out, workers=2, progress=False, limit=FIRST)
    log = out.with_name("grid.progress.jsonl")
    before = _records(log)[1]
    second = sweep(GRID, alpha=ALPHA, out=out, workers=2, progress=False)
    third = sweep(GRID, alpha=ALPHA, out=out, workers=2, progress=False)
    return out, log, before, first, second, third


def test_resume_computes_each_point_once(resumed):
    out, log, before, first, second, third = resumed
    assert (first.computed, first.skipped, first.remaining) == (FIRST, 0, 100 - FIRST)
    assert (second.computed, second.skipped, second.remaining) == (100 - FIRST, FIRST, 0)
    assert (third.computed, third.skipped) == (0, 100)
    header, lines = _records(log)
    assert header["kind"] == "solve" and header["alpha"] == ["0", "1", "2", "5"]
    keys = [json.loads(line)["key"] for line in lines]
    # one record per point: nothing finished in the first run was computed again
    assert len(keys) == len(set(keys)) == 100
    assert lines[:FIRST] == before


def test_failing_points_are_recorded(resumed):
    table = resumed[4].table
    failed = table[table["error"] != ""]
    assert set(failed["activation"]) == {"quadratic"} and len(failed) > 0
    assert all("diverged" in e for e in failed["error"])
    assert (failed["status"] == "failed").all() and failed["eps_g"].isna().all()
    ok = table[table["error"] == ""]
    assert (ok["status"] == "ok").all() and (ok["digits"] >= 8).all()
    assert len(ok[ok["activation"] == "erf"]) == 50 * len(ALPHA)


def test_tables_read_back(resumed):
    out, *_ = resumed
    csv = pd.read_csv(out.with_name("grid.csv"), dtype={"eps_g": str, "eta": str}, keep_default_na=False)
    parquet = pd.read_parquet(out.with_name("grid.parquet"))
    assert len(csv) == len(parquet) == 100 * len(ALPHA)
    assert list(csv.columns) == list(parquet.columns)
    assert set(csv["eta"]) == {str(k / 50) for k in range(1, 26)}
    ok = parquet[parquet["error"] == ""]
    for text, value, digits in zip(ok["eps_g"], ok["eps_g_float"], ok["digits"]):
        assert math.isclose(float(text), value, rel_tol=10.0 ** (1 - digits))
    erf0 = parquet[(parquet["activation"] == "erf") & (parquet["alpha"] == 0) & (parquet["L"] == 1)]
    assert erf0["eps_g"].nunique() == 1  # the start does not depend on eta
    assert out.with_name("grid.png").stat().st_size > 1000


def test_changed_request_is_refused(resumed):
    with pytest.raises(ExactdynError, match="different sweep"):
        sweep(GRID, alpha=[0, 1], out=resumed[0], progress=False)


@pytest.mark.parametrize("grid, message", [
    ({"etaa": [0.1]}, "unknown sweep parameter"),
    ({"eta": []}, "is empty"),
    ({"eta": ["fast"]}, "must be a number"),
    ({"K": [1.5]}, "whole number"),
    ({"eta": 0.1}, "list of values"),
    ({"eta": list(range(1, 1001)), "seed": list(range(101))}, f"more than the {MAX_POINTS}"),
])
def test_bad_grids(grid, message, tmp_path):
    with pytest.raises(ExactdynError, match=message):
        sweep(grid, out=tmp_path / "s", progress=False)


@pytest.mark.parametrize("options, message", [
    (dict(workers=0), "workers must be"),
    (dict(digits=5000), "digits must be"),
    (dict(kind="anneal"), "unknown sweep kind"),
    (dict(alpha=[2, 1]), "increasing"),
    (dict(scheduler="tcp://127.0.0.1:9"), "cannot reach the dask scheduler"),
])
def test_bad_options(options, message, tmp_path):
    with pytest.raises(ExactdynError, match=message):
        sweep({"eta": [0.1]}, out=tmp_path / "s", progress=False, **options)
    assert not list(tmp_path.iterdir())  # nothing written for a refused request


@pytest.mark.parametrize("argv, message", [
    (["--eta", "0.1,,0.2", "--alpha", "1"], "comma-separated numbers"),
    (["--eta", "abc", "--alpha", "1"], "must be a number"),
    (["--L", "0", "--alpha", "1"], "L must be a whole number >= 1"),
    (["--activation", "swish", "--alpha", "1"], "unknown activation"),
    (["--eta", "0.1"], "needs --alpha"),
    (["--alpha", "1", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the dask scheduler"),
])
def test_cli_errors(argv, message, tmp_path, capsys):
    assert main(["sweep", *argv, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_cli_sweep(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["sweep", "--activation", "erf", "--K", "1", "--M", "1", "--eta", "1/4,0.5", "--alpha", "0,1",
            "--out", str(out), "--workers", "1"]
    assert main(argv) == 0
    assert "2 point(s) computed" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 point(s) computed, 2 already done" in capsys.readouterr().out
    assert list(pd.read_csv(out.with_name("cli.csv"))["eta"]) == [0.25, 0.25, 0.5, 0.5]


def test_torn_last_line_is_dropped(resumed, tmp_path):
    """A run killed while writing a record leaves a torn line: the restart drops it and goes on."""
    log = tmp_path / "copy.progress.jsonl"
    log.write_text(resumed[1].read_text() + '{"key": "[\\"erf\\", 1')
    again = sweep(GRID, alpha=ALPHA, out=tmp_path / "copy", progress=False)
    assert (again.computed, again.skipped) == (0, 100)
    assert len(_records(log)[1]) == 100 and log.read_text().endswith("\n")
