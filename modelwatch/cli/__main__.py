"""`python -m modelwatch.cli`: the `modelwatch` command (the MLproject's `onboard` and
`monitor-batch` entry points run it so)."""

import sys

from modelwatch.cli import main

sys.exit(main())
