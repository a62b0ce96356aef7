"""The package's exceptions: StSecretsError and one subclass per library
result code (NotFoundError, ParseError, AuthError, ...), built at import
from the library's own list of codes (`_native.result_codes()`), as the Go
binding generates its list and the Node binding reads it. `_errors.pyi`
declares them for type checkers; stubtest checks it against these classes.
Messages never contain a secret."""

import builtins
import threading

from . import _native


class StSecretsError(Exception):
    """An st-secrets failure: `code` (the C API's st_result number),
    `code_name` (e.g. "ST_AUTH") and a message that never contains a secret."""

    code = -1
    code_name = "ST_UNKNOWN"

    def __new__(cls, message: str, code: "int | None" = None):
        # Only the message reaches the builtin base: OSError (PermissionError's
        # and TimeoutError's base) would read two arguments as errno and text.
        return super().__new__(cls, message)

    def __init__(self, message: str, code: "int | None" = None) -> None:
        super().__init__(message)
        if code is not None and code != self.code:
            self.code = code
            self.code_name = _NAMES.get(code, "ST_UNKNOWN")

    def __repr__(self):
        return f"{type(self).__name__}({self.code_name}: {self.args[0]!r})"

    def __str__(self):
        # The message as it is (builtins.KeyError, a base of KeyError below,
        # would show it quoted).
        return str(self.args[0]) if self.args else ""


def class_name(code_name: str) -> str:
    """The class of a code: ST_NOT_FOUND -> NotFoundError, ST_IO -> IoError."""
    words = code_name.removeprefix("ST_").split("_")
    return "".join(w.capitalize() for w in words) + "Error"


def _bases(name):
    """StSecretsError, and the builtin exception of the same name when there
    is one (KeyError, PermissionError, TimeoutError), so that `except
    TimeoutError:` catches the library's timeout too."""
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        return (StSecretsError, builtin)
    return (StSecretsError,)


# The class of each result code, by number.
ERRORS = {}
for _code, _name, _description in _native.result_codes():
    _cls = type(
        class_name(_name),
        _bases(class_name(_name)),
        {
            "__doc__": f"{_name}: {_description}",
            "__module__": __name__,
            "code": _code,
            "code_name": _name,
        },
    )
    globals()[_cls.__name__] = _cls
    ERRORS[_code] = _cls
del _code, _name, _description, _cls

_NAMES = {code: cls.code_name for code, cls in ERRORS.items()}

__all__ = ["StSecretsError"] + [cls.__name__ for cls in ERRORS.values()]

# The classes whose names are builtins' (KeyError, PermissionError,
# TimeoutError; each a subclass of the builtin too): attributes of the
# package, left out of its star import.
SHADOWING = [name for name in __all__ if hasattr(builtins, name)]


def error_for(code, message):
    """The exception of the class for `code`, carrying `message`."""
    return ERRORS.get(code, StSecretsError)(message, code)


def attempt(logger, level, what, key, fn, *args):
    """Runs fn(*args) for SimpleTuner's True/False methods: True when it
    succeeds; False, logged at `level` naming `what` and `key` (never a
    value), when the library refuses."""
    try:
        fn(*args)
        return True
    except StSecretsError as exc:
        logger.log(level, "Failed to %s secret %r: %s", what, key, exc)
        return False


class ProcessSingleton:
    """SimpleTuner's singleton classes: the first construction makes the
    instance, later ones return it (their arguments ignored), `_instance =
    None` drops it. Each subclass has its own instance and lock."""

    _instance = None
    _lock = threading.RLock()
    _initialized = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._instance = None
        cls._lock = threading.RLock()

    def __new__(cls, *args, **kwargs):
        with cls._lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._initialized = False
                cls._instance = instance
            return cls._instance
