"""Times Keras on the lecture's MNIST models, for comparison with `cargo xtask train-mnist`.

Lecture settings: raw 0-255 pixels as float32, one-hot labels, categorical cross-entropy,
SGD lr 0.01, batch 128, shuffled each epoch. model6 (the deeper network of issue 20) as
`cargo xtask train-mnist --model model6` trains it: pixels divided by 255, augmentation
(RandomTranslation(0.1, 0.1), RandomRotation(0.05)), Adam on CosineDecay(1e-3) over the run. Prints seconds per epoch (Keras' own epoch
timing, from a callback) and the time to evaluate the 10,000 test images.

    python3 benches/keras/keras_mnist_timing.py --model model5 --epochs 4 --data ../shared/data/mnist

Needs `tensorflow-cpu` and `keras` from PyPI (the reference runs used TF 2.21, Keras 3.15).
Not part of the build or of CI: it is the measuring stick for docs/performance.md.
"""

import argparse
import gzip
import os
import struct
import time

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{stem}[.gz] not in {data_dir}")


def load(data_dir):
    parts = []
    for kind in ("train", "t10k"):
        x = read_idx(find(data_dir, f"{kind}-images-idx3-ubyte")).astype("float32")
        y = read_idx(find(data_dir, f"{kind}-labels-idx1-ubyte"))
        parts.append((x.reshape(-1, 28, 28, 1), np.eye(10, dtype="float32")[y]))
    return parts


def build_model6(keras, steps):
    from keras import layers

    stack = [keras.Input(shape=(28, 28, 1)), layers.RandomTranslation(0.1, 0.1), layers.RandomRotation(0.05)]
    for filters in (32, 32, "pool", 64, 64, "pool", 128):
        if filters == "pool":
            stack.append(layers.MaxPooling2D())
            continue
        stack += [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(),
                  layers.Activation("relu")]
    stack += [layers.GlobalAveragePooling2D(), layers.Dropout(0.3), layers.Dense(10, activation="softmax")]
    model = keras.Sequential(stack)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(schedule),
                  metrics=["accuracy"])
    return model


def build(name, keras):
    from keras import layers

    stack = [keras.Input(shape=(28, 28, 1))]
    if name == "model1":
        stack += [layers.Flatten(), layers.Dense(100, activation="sigmoid")]
    else:
        stack += [layers.Conv2D(20, (5, 5), activation="relu"), layers.MaxPooling2D((2, 2))]
        if name == "model5":
            stack += [layers.Conv2D(40, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2))]
        stack += [layers.Flatten(), layers.Dense(100, activation="tanh")]
    stack += [layers.Dense(10, activation="softmax")]
    model = keras.Sequential(stack)
    model.compile(
        loss="categorical_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=0.01),
        metrics=["accuracy"],
    )
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="model5", choices=["model1", "model4", "model5", "model6"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data", default="../shared/data/mnist")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load(args.data)
    if args.model == "model6":
        x_train, x_test = x_train / 255.0, x_test / 255.0
        model = build_model6(keras, args.epochs * -(-len(x_train) // 128))
    else:
        model = build(args.model, keras)

    epoch_seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, verbose=2,
              callbacks=[EpochTimer()])
    for batch_size in (32, 128, 256):
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            loss, accuracy = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)
            timings.append(time.perf_counter() - start)
        print(f"evaluate batch {batch_size}: " + " ".join(f"{t:.3f}" for t in timings)
              + f" s (test accuracy {accuracy:.4f})")
    print(f"keras {keras.__version__} tensorflow {tf.__version__} threads "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}")
    print(args.model + " epoch seconds: " + " ".join(f"{t:.2f}" for t in epoch_seconds))


if __name__ == "__main__":
    main()
