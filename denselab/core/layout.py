"""The file names inside the stages' output folders, written once for the stages that write them, the stages
that read them and the tests. dvc.yaml names the folders (and spells the names of the files it tracks one by
one the same way); this module names what is in them."""

# train, evaluate and explain: one file per exercise in each of these folders (dvc.yaml's `paths`).
EXERCISE_FILE_SUFFIX = {
    "metrics": ".json",
    "summary": ".json",
    "evaluation": ".json",
    "history": ".csv",
    "predictions": ".csv",
}


def exercise_file(kind: str, exercise: str) -> str:
    """An exercise's file inside the folder of a kind of result (a key of EXERCISE_FILE_SUFFIX)."""
    return exercise + EXERCISE_FILE_SUFFIX[kind]


# explain@<exercise>: one folder per exercise. mistakes, pair and weights exist only when there is
# something to show (a mistake, a confusion, a hidden layer).
EXERCISE_FIGURES = {
    "curves": "curves.png",
    "confusion": "confusion.png",
    "mistakes": "mistakes.png",
    "pair": "pair.png",
    "weights": "weights.png",
    "units": "units.png",
}
EXERCISE_REQUIRED = ("curves", "confusion", "units")

# describe: one folder per dataset.
DATASET_SUMMARY = "summary.json"
DATASET_FIGURES = {"samples": "samples.png", "counts": "counts.png", "pixels": "pixels.png"}

# aggregate: the seeds study's folder.
RUNS_CSV = "runs.csv"
OVERVIEW_PNG = "overview.png"


def curves_png(exercise: str) -> str:
    """The file name of a studied exercise's learning-curve band figure, inside the study's folder."""
    return f"curves-{exercise}.png"


def raw_file(dataset: str) -> str:
    """A dataset's downloaded arrays inside the raw folder (dvc.yaml's download outs spell the same)."""
    return f"{dataset}.npz"


# prepare@<inputs>: one folder per input variant.
PREPARED = {"x_train": "x_train.npy", "y_train": "y_train.npy", "x_test": "x_test.npy", "y_test": "y_test.npy"}


# train@<exercise>: the model folder.
MODEL_FILE = "model.keras"
MODEL_SETTINGS = "params.json"


def run_file(seed: int) -> str:
    """A study run's file inside its exercise's folder of runs (dvc.yaml's replicate outs spell the same)."""
    return f"seed-{seed}.json"


def sources_file(stage: str) -> str:
    """A stage's list of source files inside the sources folder (dvc.yaml's deps spell the same)."""
    return f"{stage}.json"


# judge: the claims' folder.
def factorial_png(factorial: str) -> str:
    """The file name of a factorial's interaction plot, inside the claims' folder."""
    return f"factorial-{factorial}.png"
