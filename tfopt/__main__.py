"""`python -m tfopt` runs the command line (same as the `tfopt` script)."""

import sys

from tfopt.cli import main

sys.exit(main())
