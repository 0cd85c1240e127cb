"""One error hierarchy for the whole toolkit.

Every error carries a one-line message that says what went wrong and where; the
CLI prints ``str(err)`` and maps the class to an exit code, never a traceback.
"""


class TinysynError(Exception):
    """Root of all tinysyn errors."""

    exit_code = 1


class ModelError(TinysynError):
    """The model file is malformed, truncated or not a TFLite flatbuffer."""

    exit_code = 2


class UnsupportedError(TinysynError):
    """The model is well formed but uses an op or feature tinysyn does not generate."""

    exit_code = 3


class InputError(TinysynError):
    """A user-supplied input (array, option value) does not fit the model."""

    exit_code = 4


class BuildError(TinysynError):
    """A compiler or linker failed on generated code."""

    exit_code = 5
