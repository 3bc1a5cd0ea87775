"""Run every benchmark in bench/ in turn (``make bench``)."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    if not names:
        print("no benchmarks yet")
        return 0
    unmeasured = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        # each bench says in one line what it could not measure (a busy machine), and the next runs
        if importlib.import_module(f"bench.{name}").main([]):
            unmeasured.append(f"bench.{name}")
    if unmeasured:
        print(f"not (fully) measured: {', '.join(unmeasured)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
