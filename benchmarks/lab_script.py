"""The lab's plain script for one exercise, written from the lab's text: the baseline to compare against.

It keeps the lab's code path and dtypes on purpose: float64 arrays (X / 255.0), to_categorical,
Sequential + Dense, Adam, BinaryCrossentropy, fit(batch_size=128, validation_split=0.2), predict,
argmax. Only the data source differs (keras.datasets would download): the same uint8 arrays are
read from an npz with Keras' keys. A callback records each epoch's wall time.

    python benchmarks/lab_script.py ex3 data/raw/mnist.npz --epochs 3
    python benchmarks/lab_script.py ex2 data/raw/mnist.npz --seed 7        # the lab's 20 epochs, seeded

`--seed` sets Keras' global seed first (`keras.utils.set_random_seed`), as a student who wants a repeatable run
would; nothing else of the lab's code changes. That is not neutral: with it, Keras 3's `fit` visits the rows in the
same order every epoch (see benchmarks/fidelity.py, `lab+seed`); without it, as in the lab, it reshuffles.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import ClassVar

import numpy as np

LAB = {
    # exercise: (layers as (units, activation), divide by 255, learning rate, epochs), as the lab writes them
    "baseline": ([(784, None), (10, None)], False, 0.01, 10),
    "ex1": ([(784, "sigmoid"), (10, "sigmoid")], False, 0.01, 20),
    "ex2": ([(784, "relu"), (10, "sigmoid")], False, 0.01, 20),
    "ex3": ([(784, "relu"), (10, "sigmoid")], True, 0.01, 20),
    "ex5": ([(3072, "relu"), (512, "relu"), (10, "sigmoid")], True, 0.0001, 30),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("exercise", choices=sorted(LAB))
    parser.add_argument("raw", help="npz with x_train, y_train, x_test, y_test (uint8, Keras' shapes)")
    parser.add_argument("--epochs", type=int, help="default: the lab's")
    parser.add_argument("--seed", type=int, help="Keras' global seed (default: none, as in the lab)")
    args = parser.parse_args()
    start = time.perf_counter()

    import keras
    from keras.layers import Dense
    from keras.models import Sequential
    from keras.utils import to_categorical
    from sklearn.metrics import accuracy_score

    layers, scale, learning_rate, epochs = LAB[args.exercise]
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    with np.load(args.raw) as npz:
        X_train, y_train, X_test, y_test = (npz[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    if scale:
        X_train, X_test = X_train / 255.0, X_test / 255.0
    features = int(np.prod(X_train.shape[1:]))
    X_train_reshaped = X_train.reshape(-1, features)
    X_test_reshaped = X_test.reshape(-1, features)
    y_train = to_categorical(y_train, num_classes=10)

    model = Sequential()
    for i, (units, activation) in enumerate(layers):
        model.add(Dense(units, input_shape=(features if i == 0 else layers[i - 1][0],), activation=activation))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=["accuracy"],
    )

    class Timer(keras.callbacks.Callback):
        seconds: ClassVar[list[float]] = []  # one list for the run, read after fit

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            Timer.seconds.append(time.perf_counter() - self.t)

    fit_start = time.perf_counter()
    model.fit(
        X_train_reshaped,
        y_train,
        batch_size=128,
        epochs=args.epochs or epochs,
        validation_split=0.2,
        verbose=2,
        callbacks=[Timer()],
    )
    fit_seconds = time.perf_counter() - fit_start
    y_pred = np.argmax(model.predict(X_test_reshaped, verbose=0), axis=-1)
    accuracy = round(accuracy_score(y_test.reshape(-1), y_pred) * 100, 2)
    print(
        json.dumps(
            {
                "accuracy": accuracy,
                "seconds_per_epoch": Timer.seconds,
                "fit_seconds": fit_seconds,
                "wall_seconds": time.perf_counter() - start,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
