"""mm-engine: a multi-process market maker (feed -> quoter -> sender) over shared-memory rings."""
__version__ = "0.1.0"
