"""``python -m stagegate``: the command line."""

from stagegate.cli import run

run()
