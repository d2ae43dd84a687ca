"""The commands people run beside the pipeline, which no stage imports: a student's fetch of the class's results
(pull) and what a clone may do on its remote (access, keys), a profile applied to params.yaml (profile), and the
seeds study fanned out over Slurm (slurm). It may import every floor below it."""
