"""`python -m kneegui` runs the CLI."""

import sys

from kneegui.cli import main

sys.exit(main())
