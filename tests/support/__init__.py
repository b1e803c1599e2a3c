"""Handles tests and benchmarks share (clients, simulator thread, quoter reference, ring
exercise, synthetic data): not engine code, never imported by the engine."""
