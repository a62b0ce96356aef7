"""The leak guard where the leaks happen: in the training process.

Every value the library has served in this process (any manager, any
binding), and with ``install(held=True)`` every value the providers hold, is
concealed as ``<concealed by st-secrets>`` raw and encoded (base64 and
URL-safe base64 at any alignment, percent-encoded, inside a JSON string,
hexadecimal). Values shorter than 8 bytes are not matched.

    import wandb                      # before or after: either works
    from st_secrets import redact
    redact.install()                  # console and logging, before wandb.init
    run = wandb.init(config=redact.sanitize(vars(args)))
    writer.add_hparams(redact.sanitize(vars(args)), metrics)
    torch.save(redact.sanitize(args), "training_args.bin")

``install()`` wraps ``sys.stdout`` and ``sys.stderr`` (what W&B's console
capture, tqdm and ``print`` write to) and installs a ``logging`` record
factory; ``sanitize(obj)`` returns a copy of a dict, ``argparse.Namespace``,
dataclass, list, tuple, set, str or bytes with the values concealed.
"""

from __future__ import annotations

import argparse
import atexit
import codecs
import copy
import dataclasses
import logging
import os
import sys
import threading
from typing import Any, Callable, Optional, TypeVar

from . import _native

__all__ = ["install", "uninstall", "sanitize", "redact", "remember", "installed"]

PLACEHOLDER = "<concealed by st-secrets>"
MIN_LEN: int = _native.MIN_LEN

T = TypeVar("T")


def redact(data: T) -> T:
    """``data`` (str or bytes) with every known value concealed."""
    if isinstance(data, str):
        out = _native.redact_text(data)
    elif isinstance(data, (bytes, bytearray)):
        out_b = _native.redact_bytes(bytes(data))
        if out_b is None:
            return data
        return bytearray(out_b) if isinstance(data, bytearray) else out_b  # type: ignore[return-value]
    else:
        raise TypeError(f"redact() takes str or bytes, not {type(data).__name__}")
    return data if out is None else out  # type: ignore[return-value]


def remember(key: str, value: str) -> None:
    """Conceals ``value`` from now on too (a value this process got without
    the library, such as a token typed at a prompt)."""
    _native.remember(key, value)


def sanitize(obj: T) -> T:
    """A copy of ``obj`` with every known value concealed in its strings and
    bytes, recursively: dicts (keys too), lists, tuples, sets,
    ``argparse.Namespace``, dataclass instances. Other objects are returned
    as they are (not copied)."""
    return _sanitize(obj, 0)  # type: ignore[no-any-return]


def _sanitize(obj: Any, depth: int) -> Any:
    if depth > 100:
        return obj
    d = depth + 1
    if isinstance(obj, (str, bytes, bytearray)):
        return redact(obj)
    if isinstance(obj, argparse.Namespace):
        return argparse.Namespace(**{k: _sanitize(v, d) for k, v in vars(obj).items()})
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = copy.copy(obj)
        for f in dataclasses.fields(obj):
            object.__setattr__(out, f.name, _sanitize(getattr(obj, f.name), d))
        return out
    if isinstance(obj, dict):
        items = [(_sanitize(k, d), _sanitize(v, d)) for k, v in obj.items()]
        try:
            return type(obj)(items)
        except TypeError:
            return dict(items)
    if isinstance(obj, (list, tuple, set, frozenset)):
        items_l = [_sanitize(v, d) for v in obj]
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
            return type(obj)(*items_l)
        try:
            return type(obj)(items_l)
        except TypeError:
            return list(items_l)
    return obj


class _RedactingStream:
    """A text stream passing every write on with the values concealed; a
    value split across writes is found (only a possible start of a value is
    held, until the next write or the end of the process).

    Code that wraps ``write`` (W&B's console capture patches
    ``sys.stdout.write`` when wandb is imported) gets the concealed text
    whether it patched before or after ``install()``: a ``write`` set on this
    stream is kept and called with the concealed text, and its own call of
    the original ``write`` passes straight through."""

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_patched", None)
        object.__setattr__(self, "_local", threading.local())
        object.__setattr__(self, "_lock", threading.RLock())
        object.__setattr__(self, "_redactor", _native.Redactor())
        object.__setattr__(self, "_decoder", codecs.getincrementaldecoder("utf-8")("surrogateescape"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "write":
            object.__setattr__(self, "_patched", value)
        else:
            setattr(self._inner, name, value)

    def _pass(self, text: str) -> None:
        if not text:
            return
        local = self._local
        patched: Optional[Callable[[str], Any]] = self._patched
        if patched is None or getattr(local, "inside", False):
            self._inner.write(text)
            return
        local.inside = True
        try:
            patched(text)
        finally:
            local.inside = False

    def write(self, s: str) -> int:
        if getattr(self._local, "inside", False):
            # The patch calling the write it wrapped: already concealed.
            self._inner.write(s)
            return len(s)
        with self._lock:
            out = self._redactor.write(s.encode("utf-8", "surrogateescape"))
            self._pass(self._decoder.decode(out))
        return len(s)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _after_fork(self) -> None:
        """In a forked child: a lock another thread of the parent held at
        the fork would never be released here, and a write it was in the
        middle of left the redactor mid-stream; both are made anew (what
        the parent held back is the parent's to write)."""
        object.__setattr__(self, "_local", threading.local())
        object.__setattr__(self, "_lock", threading.RLock())
        object.__setattr__(self, "_redactor", _native.Redactor())
        object.__setattr__(self, "_decoder", codecs.getincrementaldecoder("utf-8")("surrogateescape"))

    def finish(self) -> None:
        """Passes on what was held back."""
        with self._lock:
            out = self._redactor.finish()
            self._pass(self._decoder.decode(out, final=True))
        try:
            self._inner.flush()
        except (OSError, ValueError):
            pass


_state_lock = threading.Lock()
_installed: dict[str, Any] = {}


def _after_fork_in_child() -> None:
    """Training launchers fork (DataLoader workers, multiprocessing): the
    wrapped streams and the module's lock are made fork-safe in the child,
    as the library's own locks are."""
    global _state_lock
    _state_lock = threading.Lock()
    for name in ("stdout", "stderr"):
        pair = _installed.get(name)
        if pair is not None:
            pair[1]._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _record_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: left to the handler to report
            return record
        concealed = _native.redact_text(message)
        if concealed is not None:
            record.msg, record.args = concealed, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    return factory


def install(*, held: bool = True, streams: bool = True, logs: bool = True) -> None:
    """Conceals known values in what this process prints and logs.

    ``held``: also every value the default manager's providers hold now
    (each key of the secrets file and of the remote secrets, and the
    well-known keys in the environment, such as ``HF_TOKEN``), not only the
    values served so far; a provider's failure raises. ``streams``: wrap
    ``sys.stdout`` and ``sys.stderr``. ``logs``: a ``logging`` record factory
    conceals each record's message, exception and stack text as it is made.
    Call it before ``wandb.init`` (and before handlers format anything);
    calling it again only adds the values held now."""
    if held:
        from .manager import get_secrets_manager

        _native.manager_remember_held(get_secrets_manager())
    with _state_lock:
        if streams and "stdout" not in _installed:
            for name in ("stdout", "stderr"):
                original = getattr(sys, name)
                if original is None:
                    continue
                wrapped = _RedactingStream(original)
                _installed[name] = (original, wrapped)
                setattr(sys, name, wrapped)
            atexit.register(_finish_streams)
        if logs and "logging" not in _installed:
            previous = logging.getLogRecordFactory()
            _installed["logging"] = previous
            logging.setLogRecordFactory(_record_factory(previous))


def _finish_streams() -> None:
    for name in ("stdout", "stderr"):
        pair = _installed.get(name)
        if pair is not None:
            pair[1].finish()


def installed() -> bool:
    """Whether ``install()`` is in effect."""
    return bool(_installed)


def uninstall() -> None:
    """Undoes ``install()``: the streams and the record factory it replaced
    are put back (the values stay known to ``redact`` and ``sanitize``)."""
    with _state_lock:
        for name in ("stdout", "stderr"):
            pair = _installed.pop(name, None)
            if pair is not None:
                pair[1].finish()
                if getattr(sys, name) is pair[1]:
                    setattr(sys, name, pair[0])
        previous = _installed.pop("logging", None)
        if previous is not None:
            logging.setLogRecordFactory(previous)
