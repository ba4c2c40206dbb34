"""``python -m brokers.ibsim``: the simulator's command line."""

import sys

from brokers.ibsim.cli import main

sys.exit(main())
