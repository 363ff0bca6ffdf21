"""`python -m pipegen` runs the command line."""

from pipegen.cli import main

raise SystemExit(main())
