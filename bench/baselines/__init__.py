"""The clients the engine is measured against in the end-to-end bench (bench/e2e.py), each a
program of its own trading against the same simulator: the tutorial-style asyncio bot
(asyncio_bot), the engine's pipeline over multiprocessing.Queue (mpqueue) and the picows reflex
(reflex). Their shared command line and conventions: common.py."""
