"""Regenerate the LaTeX derivations of the canonical configurations: python derivations/generate.py"""
from pathlib import Path
import sys

from exactdyn.symbolic.cache import derive
from exactdyn.symbolic.expectations import Erf, Polynomial
from exactdyn.symbolic.hierarchy import Structure
from exactdyn.symbolic.render import latex_document

HERE = Path(__file__).parent
CANONICAL = {
    "linear_K1_M1_L3": Structure(Polynomial((0, 1)), 1, 1, 3),
    "erf_K2_M2_L3": Structure(Erf(), 2, 2, 3),
    "erf_K2_M1_L2_sqrt": Structure(Erf(), 2, 1, 2, "sqrt", "sqrt"),
    "quadratic_K2_M1_L1_paper": Structure(Polynomial((0, 0, 1)), 2, 1, 1, "mean", "mean", 1),
    "cubic_K1_M1_L2": Structure(Polynomial((0, 0, 0, 1)), 1, 1, 2),
}


def documents():
    return {f"{name}.tex": latex_document(derive(s, "moment"), s) for name, s in CANONICAL.items()}


def main(out_dir=HERE):
    for name, text in documents().items():
        (Path(out_dir) / name).write_text(text)
        print(f"wrote {Path(out_dir) / name}")


if __name__ == "__main__":
    main(*sys.argv[1:])
