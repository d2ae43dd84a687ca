"""DenseLab's pipeline stages: one entry-point module per DVC stage (`python -m stages.<name>`)."""
