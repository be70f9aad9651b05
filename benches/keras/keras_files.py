"""Keras 3 `.keras` files in and out (issue 22).

Writes, under OUT (default crates/nn/tests/data/):

- `keras-model4.keras`: the lecture's model4 as a Keras `Sequential` (Conv2D(20, 5x5, relu) on
  28x28x1, MaxPooling2D, Flatten, Dense(100, tanh), Dense(10, softmax));
- `keras-two-inputs.keras`: a small functional model, two inputs, Dense layers, Concatenate and
  two outputs, compiled with Adam (so the file has an `optimizer` group too);
- `keras-files.txt`: for each model its fixed inputs and Keras' predictions.

Weights and inputs come from NumPy's seeded generator, set with `set_weights`, so they do not
depend on the backend's initialisers.

With `--check FILE.keras PREDICTIONS.txt` it instead loads a `.keras` file written by nn with
`keras.saving.load_model` and checks that Keras' predictions on the inputs in PREDICTIONS.txt
equal nn's, printing the largest difference (exit 1 above 1e-5).

    KERAS_BACKEND=jax python benches/keras/keras_files.py [OUT]
    KERAS_BACKEND=jax python benches/keras/keras_files.py --check model4.keras model4.txt

The text format, shared with nn's tests: blocks of `name rows cols` on one line then `rows`
lines of `cols` numbers; a block name is `<model>.input<i>` or `<model>.output<i>`.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def model4():
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(20, (5, 5), activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="tanh"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return model


def two_inputs():
    a = keras.Input((6,), name="a")
    b = keras.Input((4,), name="b")
    ha = keras.layers.Dense(5, activation="relu", name="dense_a")(a)
    hb = keras.layers.Dense(3, activation="tanh", name="dense_b")(b)
    both = keras.layers.Concatenate(name="both")([ha, hb])
    out1 = keras.layers.Dense(4, activation="softmax", name="class")(both)
    out2 = keras.layers.Dense(1, activation="sigmoid", name="score")(both)
    return keras.Model([a, b], [out1, out2], name="two_inputs")


def set_weights(model, seed):
    rng = np.random.default_rng(seed)
    # Scaled like Glorot so the activations stay in their interesting ranges.
    model.set_weights(
        [
            (rng.standard_normal(w.shape) * (1.0 / np.sqrt(max(1, np.prod(w.shape[:-1]))))).astype(
                np.float32
            )
            for w in model.get_weights()
        ]
    )


def write_blocks(f, name, arrays, kind):
    for i, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float32).reshape(len(a), -1)
        f.write(f"{name}.{kind}{i} {a.shape[0]} {a.shape[1]}\n")
        for row in a:
            f.write(" ".join(f"{v:.9g}" for v in row) + "\n")


def read_blocks(path):
    blocks = {}
    with open(path) as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        name, rows, cols = lines[i].split()
        rows, cols = int(rows), int(cols)
        data = [[float(v) for v in lines[i + 1 + r].split()] for r in range(rows)]
        blocks[name] = np.array(data, dtype=np.float32).reshape(rows, cols)
        i += 1 + rows
    return blocks


def make(out):
    rng = np.random.default_rng(22)
    m4 = model4()
    set_weights(m4, 4)
    x4 = rng.uniform(0.0, 1.0, (3, 28, 28, 1)).astype(np.float32)
    m2 = two_inputs()
    set_weights(m2, 2)
    # Compiled, with the optimizer's variables built (zeros, no step taken), so the file also
    # holds `optimizer/vars/...` and a compile config, which nn ignores.
    m2.compile(optimizer=keras.optimizers.Adam(), loss=["categorical_crossentropy", "mse"])
    m2.optimizer.build(m2.trainable_variables)
    xa = rng.standard_normal((5, 6)).astype(np.float32)
    xb = rng.standard_normal((5, 4)).astype(np.float32)
    m4.save(os.path.join(out, "keras-model4.keras"))
    m2.save(os.path.join(out, "keras-two-inputs.keras"))
    with open(os.path.join(out, "keras-files.txt"), "w") as f:
        write_blocks(f, "model4", [x4], "input")
        write_blocks(f, "model4", [m4.predict(x4, verbose=0)], "output")
        write_blocks(f, "two_inputs", [xa, xb], "input")
        write_blocks(f, "two_inputs", m2.predict([xa, xb], verbose=0), "output")
    print(f"keras {keras.__version__} ({keras.backend.backend()}): wrote the fixtures to {out}")


def check(model_path, predictions_path):
    """Loads nn's `.keras` file with Keras and compares its predictions with nn's."""
    model = keras.saving.load_model(model_path)
    blocks = read_blocks(predictions_path)
    prefix = next(iter(blocks)).split(".")[0]
    inputs = [blocks[k] for k in sorted(blocks) if ".input" in k]
    outputs = [blocks[k] for k in sorted(blocks) if ".output" in k]
    shaped = [x.reshape((x.shape[0],) + tuple(i.shape[1:])) for x, i in zip(inputs, model.inputs)]
    ours = model.predict(shaped if len(shaped) > 1 else shaped[0], verbose=0)
    ours = ours if isinstance(ours, (list, tuple)) else [ours]
    worst = 0.0
    for theirs, keras_out in zip(outputs, ours):
        keras_out = np.asarray(keras_out).reshape(theirs.shape)
        worst = max(worst, float(np.max(np.abs(keras_out - theirs))))
    n = sum(int(np.prod(w.shape)) for w in model.weights)
    print(
        f"keras {keras.__version__} ({keras.backend.backend()}) loaded {model_path}: "
        f"{model.__class__.__name__} '{model.name}', {len(model.layers)} layers, {n} weights; "
        f"{prefix}: {len(outputs)} output(s) on {inputs[0].shape[0]} samples, "
        f"largest |keras - nn| = {worst:.3g}"
    )
    if worst > 1e-5:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        make(sys.argv[1] if len(sys.argv) > 1 else "crates/nn/tests/data")
