"""`python -m st_secrets ARGS`: the st-secrets command-line tool."""

from ._cli import main

main()
