"""`make bench`: micro and end-to-end benchmarks (python -m bench [--only NAME] [--quick])."""
