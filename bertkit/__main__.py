"""`python -m bertkit ...` (and `torchrun -m bertkit ...`) runs the CLI."""

from bertkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
