"""`make bench`: micro and end-to-end benchmarks (python -m bench [--only NAME] [--quick]).

Benchmarks drive the engine with the same handles the tests use (the quoter's Python reference,
synthetic ticks, the simulator thread, the ring exercise): the package tests.support, imported
from the repository root, put on the import path here (a ref checked out by --against runs from
its own folder).
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
