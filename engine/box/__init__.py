"""The box the engine runs on: its CPU topology (topology.py), the checks of `mm doctor`
(checks.py, doctor.py) and the alert systemd runs when a unit fails (alert.py). Set-up and
reporting only: nothing here is imported by a hot path."""
