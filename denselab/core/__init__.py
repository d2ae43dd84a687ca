"""The floor every other stands on: params.yaml and the files beside it, validated into models (config, schema,
exercise); the records, curves and file names one stage writes and another reads (records, history, layout); the
report's languages (i18n, messages/); and what every entry point shares: one-line errors (cli), whole-file writes
(files), DVC's remote (remote), the code a stage runs (sources). It imports nothing of DenseLab's above it."""
