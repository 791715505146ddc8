"""``python -m benchmarks [--quick] [--json] ...``: lines, then pages, then every target (``benchmarks.lines``)."""

from __future__ import annotations

import sys

from benchmarks.lines import main

if __name__ == "__main__":
    sys.exit(main())
