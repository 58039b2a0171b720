"""``python -m runner``: see runner/cli.py."""

import sys

from runner.cli import main

sys.exit(main())
