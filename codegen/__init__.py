"""tinysyn code generation: frontends, IR, passes, NumPy reference and C emitter."""
from importlib import metadata

try:
    __version__ = metadata.version("tinysyn")
except metadata.PackageNotFoundError:  # running from a checkout that was not pip-installed
    __version__ = "0.0.0+checkout"
