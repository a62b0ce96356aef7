"""The `st-secrets` console script: the library's command-line tool, compiled
into the extension (no separate binary, no Rust toolchain needed)."""

import sys

from . import _native


def main() -> None:
    sys.stdout.flush()
    sys.exit(_native.run_tool(sys.argv[1:]))
