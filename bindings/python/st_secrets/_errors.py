"""The package's exceptions: StSecretsError and one subclass per library
result code (NotFoundError, ParseError, AuthError, ...), built from the
library's own list of codes. Messages never contain a secret."""

from . import _native


class StSecretsError(Exception):
    """An st-secrets failure: `code` (the C API's st_result number),
    `code_name` (e.g. "ST_AUTH") and a message that never contains a secret."""

    code = -1
    code_name = "ST_UNKNOWN"

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None and code != self.code:
            self.code = code
            self.code_name = _NAMES.get(code, "ST_UNKNOWN")

    def __repr__(self):
        return f"{type(self).__name__}({self.code_name}: {self.args[0]!r})"


def _class_name(code_name):
    return "".join(part.capitalize() for part in code_name[3:].split("_")) + "Error"


_NAMES = dict(_native.result_codes())
ERRORS = {}
for _code, _code_name in _NAMES.items():
    _cls = type(_class_name(_code_name), (StSecretsError,), {"code": _code, "code_name": _code_name,
                                                              "__module__": "st_secrets"})
    ERRORS[_code] = _cls
    globals()[_cls.__name__] = _cls
NOT_FOUND = 1


def error_for(code, message):
    """The exception of the class for `code`, carrying `message`."""
    return ERRORS.get(code, StSecretsError)(message, code)
