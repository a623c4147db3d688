"""On-disk cache of derived systems.

An entry is a header line (JSON: the entry's full key and the SHA-256 of the payload) and a JSON
payload read back by the allowlist decoder of `serialize`: loading an entry runs no code.  The key
names the structure, the basis, the sympy version, the format and a hash of every package module
the derivation imports.  Only a regular file of at most MAX_BYTES is read (no symlink, FIFO or
device); an entry that is refused, unreadable or of another key is rebuilt and overwritten.
Entries are written atomically (temporary file, then rename).
"""
import ast
from functools import lru_cache
import hashlib
import os
from pathlib import Path
import stat
import tempfile

import sympy as sp

from ..errors import ExactdynError
from . import serialize
from .hierarchy import Structure, derive_mode, derive_moment

MAX_BYTES = 64 << 20
BUILDERS = {"moment": derive_moment, "mode": derive_mode}
_PACKAGE = Path(__file__).resolve().parents[1]


def cache_dir():
    root = os.environ.get("EXACTDYN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "exactdyn")
    return Path(root)


def _imported_modules(path):
    """Files of the package that `path` imports (relative imports, or absolute ones of exactdyn)."""
    found = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.ImportFrom):
            base = path.parents[node.level - 1] if node.level else _PACKAGE.parent
            module = (node.module or "").split(".")
            targets = [module, *([*module, a.name] for a in node.names)]  # a name may be a submodule
        elif isinstance(node, ast.Import):
            base, targets = _PACKAGE.parent, [a.name.split(".") for a in node.names]
        else:
            continue
        for parts in targets:
            target = base.joinpath(*filter(None, parts))
            found += [p for p in (target.parent / f"{target.name}.py", target / "__init__.py")
                      if _PACKAGE in p.parents and p.is_file()]
    return found


def derivation_modules():
    """Every .py file under symbolic/ and, transitively, the package modules they import."""
    todo, seen = sorted((_PACKAGE / "symbolic").rglob("*.py")), set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += _imported_modules(path)
    return sorted(seen)


@lru_cache(maxsize=None)
def source_hash():
    h = hashlib.sha256()
    for path in derivation_modules():
        data = path.read_bytes()
        name = path.relative_to(_PACKAGE).as_posix().encode()
        h.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def entry_key(structure, basis):
    return {"structure": structure.key(), "basis": basis, "source": source_hash(),
            "sympy": sp.__version__, "format": serialize.FORMAT}


def entry_path(structure, basis):
    return cache_dir() / f"{basis}-{structure.key()}.json"


def _read_regular(path):
    """The bytes of `path` if it is a regular file of at most MAX_BYTES, else None.

    Never follows a symlink nor waits on a FIFO: lstat first, then open without following and
    without blocking, and check the opened file again."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with os.fdopen(os.open(path, flags), "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
                return None
            blob = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    return blob if len(blob) <= MAX_BYTES else None


def _read(path, key):
    """The system stored at `path` under `key`, or None (missing, refused, damaged, other key)."""
    blob = _read_regular(path)
    if blob is None:
        return None
    head, _, payload = blob.partition(b"\n")
    try:
        if serialize.loads(head) != {"key": key, "sha256": hashlib.sha256(payload).hexdigest()}:
            return None
        return serialize.decode(serialize.loads(payload))
    except Exception:  # whatever makes an entry unreadable, it is rebuilt
        return None


def _write(path, key, system):
    payload = serialize.dumps(serialize.encode(system))
    blob = serialize.dumps({"key": key, "sha256": hashlib.sha256(payload).hexdigest()}) + b"\n" + payload
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Seconds of an erf derivation at K = M = 4, L = 1 (moment basis, 2 cores), growing as (K + M)^3.2;
# the most we start.
_DERIVE_SECONDS = 10.0
MAX_DERIVE_SECONDS = 600.0


def check_derive_cost(structure):
    """Refuse, before sympy starts, a derivation estimated to run past MAX_DERIVE_SECONDS (a rough fit
    to about ten timings: it catches the extreme requests)."""
    s = structure
    degree = getattr(s.activation, "degree", 3)
    seconds = _DERIVE_SECONDS * ((s.K + s.M) / 8) ** 3.2 * (1 + s.L / 16) * max(1, degree / 3) ** 2
    if seconds > MAX_DERIVE_SECONDS:
        raise ExactdynError(f"deriving K = {s.K}, M = {s.M}, L = {s.L} would take about {seconds:.2g} s (estimated; "
                            f"limit {MAX_DERIVE_SECONDS:g} s): use smaller widths or L")


def derive(structure, basis="moment", *, use_cache=True):
    """The closed system of `structure` in the `basis` ('moment' or 'mode'), from the cache when possible."""
    if basis not in BUILDERS:
        raise ExactdynError(f"unknown basis {basis!r}: choose moment or mode")
    if not isinstance(structure, Structure):
        if not all(hasattr(structure, a) for a in ("activation", "K", "M", "L")):
            raise ExactdynError(f"derive needs a Structure or a Problem, got {type(structure).__name__}")
        structure = Structure.of(structure)
    check_derive_cost(structure)
    if not use_cache or not structure.activation.cacheable:
        return BUILDERS[basis](structure)
    key, path = entry_key(structure, basis), entry_path(structure, basis)
    system = _read(path, key)
    if system is None:
        system = BUILDERS[basis](structure)
        try:
            _write(path, key, system)
        except (OSError, serialize.Unsupported):
            pass  # an unwritable cache, or a system the format cannot hold, only costs a derivation
    return system
