"""DenseLab pipeline stages: one module per DVC stage, plus shared helpers."""
