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


class ResourceError(TinysynError):
    """The model does not fit the board: RAM or flash, with the sizes named."""

    exit_code = 6


class BoardError(TinysynError):
    """Talking to a board (or the emulator standing in for one) failed."""

    exit_code = 7


class PortError(BoardError):
    """The serial port (a device path, pty or pyserial URL) cannot be opened."""


class BoardTimeoutError(BoardError):
    """The board stopped answering: no reply within the time limit."""


class ProtocolError(BoardError):
    """The board answered, but not as the protocol says (bad frame, error reply)."""


class FlashError(BoardError):
    """Flashing failed: retries exhausted, the board refused, or verification failed."""


class MismatchError(TinysynError):
    """A result (generated C, RTL or a board) differs from the NumPy reference.

    ``report`` carries whatever was measured, so a caller can still write it.
    """

    exit_code = 8

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report


class TrainingError(TinysynError):
    """A training run diverged or overflowed; the last good weights are kept."""

    exit_code = 9
