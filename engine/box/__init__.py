"""The box the engine runs on: its CPU topology (topology.py), which core and idle strategy each
process gets (core_layout.py), the checks of `mm doctor` (facts.py, cpu_checks.py,
system_checks.py, doctor.py) and the alert systemd runs when a unit fails (alert.py). Set-up and
reporting only: nothing here is imported by a hot path."""
