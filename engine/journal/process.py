"""`mm journal-agent`: the journal agent process (engine/journal/agent.py)."""
from engine.journal.agent import run  # noqa: F401
