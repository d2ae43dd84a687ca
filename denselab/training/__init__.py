"""One run of an exercise: the one model factory (models), the training loop and its feed (loop, feed), a run
seeded and fitted (fit), its evaluation and evidence (evaluation), what that evidence says (diagnostics), what
defines a run (fingerprints), and what it will cost (resources). It may import `denselab.data` and `denselab.core`;
never the study, which only reads what a run wrote."""
