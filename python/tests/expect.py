"""expect(exc_type, fragment, call): the test helper for errors. call() must raise exc_type with
`fragment` in its message; otherwise the process exits naming the rank (RANK) and what it got."""
import os
import sys


def expect(exc_type, fragment, call):
    where = f"rank {os.environ['RANK']}: " if "RANK" in os.environ else ""
    try:
        call()
    except exc_type as e:
        if fragment not in str(e):
            sys.exit(f"{where}{exc_type.__name__} without '{fragment}': {e}")
        return e
    sys.exit(f"{where}expected {exc_type.__name__} ({fragment})")
