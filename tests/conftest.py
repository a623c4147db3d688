import os
import tempfile

# Tests derive into a private cache so that they neither read nor leave a user's entries.
os.environ.setdefault("EXACTDYN_CACHE", tempfile.mkdtemp(prefix="exactdyn-test-cache-"))
