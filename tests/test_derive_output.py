"""The printed forms of a derivation: LaTeX that compiles, regenerated derivations, JSON, the cache."""
import importlib.util
import json
import os
from pathlib import Path
import shutil
import subprocess

import pytest

from exactdyn import Erf, Structure
from exactdyn.symbolic import cache
from exactdyn.cli import main
from exactdyn.symbolic.render import latex_document

ROOT = Path(__file__).resolve().parents[1]


def test_latex_erf_K2_M2_L3_compiles(tmp_path):
    structure = Structure(Erf(), 2, 2, 3)
    tex = latex_document(cache.derive(structure), structure)
    (tmp_path / "erf.tex").write_text(tex)
    if shutil.which("pdflatex") is None:
        # CI installs pdflatex and sets this: there a missing compiler is a failure, not a skip
        assert not os.environ.get("EXACTDYN_REQUIRE_PDFLATEX"), "pdflatex is required here and missing"
        pytest.skip("SKIPPED LOUDLY: pdflatex is not installed, the LaTeX document was not compiled")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "erf.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "erf.pdf").stat().st_size > 10_000


def test_derivations_regenerate_identically(tmp_path):
    spec = importlib.util.spec_from_file_location("generate", ROOT / "derivations" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generate.main(tmp_path)
    committed = sorted(p.name for p in (ROOT / "derivations").glob("*.tex"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.tex"))
    for name in committed:
        assert (tmp_path / name).read_text() == (ROOT / "derivations" / name).read_text(), name


def test_json_output_lists_every_state(capsys):
    assert main(["derive", "--activation", "quadratic", "--K", "2", "--M", "1", "--L", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["basis"] == "moment" and data["orders"] == [1, 2]
    assert list(data["rhs"]) == data["states"] and len(data["states"]) == 2 * (2 + 3)
    assert "eta" in data["params"] and "tau3" in data["params"] and data["closure"]


def test_text_output_names_kept_orders(capsys):
    assert main(["derive", "--activation", "linear", "--K", "1", "--M", "1", "--L", "3", "--basis", "mode"]) == 0
    assert "eigenmode basis" in capsys.readouterr().out
    assert main(["derive", "--activation", "linear", "--K", "1", "--M", "1", "--L", "3"]) == 0
    assert "orders kept: l = 1..3" in capsys.readouterr().out


def test_corrupted_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("EXACTDYN_CACHE", str(tmp_path))
    structure = Structure(Erf(), 1, 1, 2)
    first = cache.derive(structure)
    path, key = cache.entry_path(structure, "moment"), cache.entry_key(structure, "moment")
    assert path.exists() and not list(tmp_path.glob(".tmp-*"))
    assert cache._read(path, key) == first
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0x01
    path.write_bytes(bytes(blob))
    assert cache._read(path, key) is None
    again = cache.derive(structure)
    assert again == first and cache._read(path, key) == first
    path.write_bytes(b"garbage")
    assert cache.derive(structure) == first
