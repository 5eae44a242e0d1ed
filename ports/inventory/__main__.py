"""`python -m ports.inventory`: the listening sockets and their owners as a table (or --json)."""

from __future__ import annotations

import sys

from ports.inventory import main

sys.exit(main())
