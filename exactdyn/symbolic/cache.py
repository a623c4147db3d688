"""On-disk cache of derived systems, keyed by the structure and the derivation code.

Entries are written atomically (temporary file, then rename) and carry a SHA-256 of their
payload; an entry that fails the check or does not load is rebuilt.
"""
import hashlib
import os
from pathlib import Path
import pickle
import tempfile

from .. import __version__
from .hierarchy import Structure, derive_mode, derive_moment

_MAGIC = b"exactdyn-cache-1\n"
_SOURCES = ("hierarchy.py", "expectations.py", "system.py", "conventions.py")
BUILDERS = {"moment": derive_moment, "mode": derive_mode}


def cache_dir():
    root = os.environ.get("EXACTDYN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "exactdyn")
    return Path(root)


def _code_hash():
    h = hashlib.sha256(__version__.encode())
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def entry_path(structure, basis):
    return cache_dir() / f"{basis}-{structure.key()}-{_code_hash()}.pkl"


def _read(path):
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    if not blob.startswith(_MAGIC):
        return None
    digest, _, payload = blob[len(_MAGIC):].partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    try:
        return pickle.loads(payload)
    except Exception:  # a damaged payload is rebuilt, whatever made it unreadable
        return None


def _write(path, system):
    payload = pickle.dumps(system, protocol=pickle.HIGHEST_PROTOCOL)
    blob = _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def derive(structure, basis="moment", *, use_cache=True):
    """The closed system of `structure` in the `basis` ('moment' or 'mode'), from the cache when possible."""
    if basis not in BUILDERS:
        from ..errors import ExactdynError
        raise ExactdynError(f"unknown basis {basis!r}: choose moment or mode")
    if not isinstance(structure, Structure):
        structure = Structure.of(structure)
    if not use_cache:
        return BUILDERS[basis](structure)
    path = entry_path(structure, basis)
    system = _read(path)
    if system is None:
        system = BUILDERS[basis](structure)
        try:
            _write(path, system)
        except OSError:
            pass  # an unwritable cache only costs the next run a derivation
    return system
