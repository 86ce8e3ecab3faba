"""Make the (not yet installed) restplug-catalog plugin importable from the source tree."""

import sys
from pathlib import Path

try:
    import restplug_catalog  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "catalog"))
