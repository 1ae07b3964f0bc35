"""``python -m lodestar`` runs the CLI."""

import sys

from lodestar.cli import main

sys.exit(main())
