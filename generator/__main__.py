"""`python -m generator` is `trgen`."""

import sys

from .cli import main

sys.exit(main())
