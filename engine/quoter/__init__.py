"""Quoter process: numba-compiled market-making loop with risk controls."""
