"""`python -m pocketstack`: the same as the `pocketstack` command."""

from pocketstack.cli import app

app()
