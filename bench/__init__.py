"""`make bench`: micro and end-to-end benchmarks (python -m bench [--only NAME] [--quick]).

Benchmarks drive the engine with the same handles the tests use (the quoter's Python reference,
synthetic ticks, the simulator thread, the ring exercise): they live in tests/support, put on
the import path here.
"""
import sys
from pathlib import Path

_SUPPORT = str(Path(__file__).resolve().parents[1] / "tests" / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)
