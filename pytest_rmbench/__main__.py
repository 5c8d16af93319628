"""`python -m pytest_rmbench runs ...`: the run-history commands (see cli.py)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
