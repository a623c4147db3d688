"""exactdyn: exact, arbitrary-precision dynamics of one-pass SGD in teacher-student networks."""
__version__ = "0.1.0"

from .errors import ExactdynError, PrecisionError  # noqa: E402
from .spectrum import Spectrum, power_law, from_eigenvalues, isotropic  # noqa: E402
from .symbolic.expectations import Erf, Polynomial, activation_from_name  # noqa: E402
from .symbolic.conventions import Model  # noqa: E402
from .symbolic.hierarchy import Structure, derive_moment, derive_mode, derive_general_order, basis_map  # noqa: E402
from .symbolic.cache import derive  # noqa: E402

__all__ = ["ExactdynError", "PrecisionError", "Spectrum", "power_law", "from_eigenvalues", "isotropic",
           "Erf", "Polynomial", "activation_from_name", "Model", "Structure", "derive_moment",
           "derive_mode", "derive_general_order", "basis_map", "derive"]
