"""Wraps `python -m flownet.cli`."""

import sys

from flownet.cli import main

sys.exit(main())
