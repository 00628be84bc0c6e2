"""``python -m eventsnn``: the command line."""

import sys

from .cli import main

sys.exit(main())
