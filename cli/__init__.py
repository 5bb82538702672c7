"""The `erysta-workers` command line: operator commands, the simulator and the demo."""
