"""``python -m smsdrop`` is the ``smsdrop`` command."""

import sys

from smsdrop.cli import main

sys.exit(main())
