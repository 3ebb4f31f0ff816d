"""`python -m vitdemo train|evaluate|predict|leaderboard|bench|worker`."""

from __future__ import annotations

import sys

from vitdemo.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
