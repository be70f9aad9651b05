# Keras 3's optimizers applied for 5 steps to two fixed variables with fixed per-step gradients:
# the variables after each step, and each optimizer's config; the numbers
# crates/nn/tests/optimizers.rs compares nn's optimizers with.
# Variables: w0 [2, 3] with w0[n] = 1.5 sin(0.9 n + 0.2), w1 [4] with w1[n] = cos(0.6 n) - 0.3
# (flat index n). Gradient of step s (1 to 5): amp(s) = 0.7 + 0.5 cos(2.5 s),
# g0[n] = amp(s) (2 sin(1.3 n + 0.7 s) + 0.1 (n % 3)), g1[n] = 1.5 amp(s) cos(0.9 n - 0.4 s),
# each computed in float64 and rounded to float32. Every configuration applies to both
# variables (so global_clipnorm clips them together).
# Run: KERAS_BACKEND=jax python benches/keras/optimizers.py
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import keras
import numpy as np

O = keras.optimizers
STEPS = 5
n0 = np.arange(6)
n1 = np.arange(4)
w0 = (1.5 * np.sin(0.9 * n0 + 0.2)).astype(np.float32).reshape(2, 3)
w1 = (np.cos(0.6 * n1) - 0.3).astype(np.float32)


def amp(s):
    return 0.7 + 0.5 * np.cos(2.5 * s)


def grads(s):
    g0 = (amp(s) * (2 * np.sin(1.3 * n0 + 0.7 * s) + 0.1 * (n0 % 3))).astype(np.float32).reshape(2, 3)
    g1 = (1.5 * amp(s) * np.cos(0.9 * n1 - 0.4 * s)).astype(np.float32)
    return [g0, g1]


CONFIGS = [
    ("sgd_nesterov", lambda: O.SGD(learning_rate=0.05, momentum=0.8, nesterov=True)),
    ("adam", lambda: O.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)),
    ("rmsprop", lambda: O.RMSprop(learning_rate=0.01, rho=0.8, epsilon=1e-6)),
    ("rmsprop_centered_momentum",
     lambda: O.RMSprop(learning_rate=0.01, rho=0.85, momentum=0.5, epsilon=1e-6, centered=True)),
    ("adagrad", lambda: O.Adagrad(learning_rate=0.05, initial_accumulator_value=0.2, epsilon=1e-6)),
    ("adamw", lambda: O.AdamW(learning_rate=0.01, weight_decay=0.05, beta_1=0.8, beta_2=0.99, epsilon=1e-6)),
    ("adam_amsgrad", lambda: O.Adam(learning_rate=0.01, beta_2=0.6, amsgrad=True)),
    ("adamw_amsgrad", lambda: O.AdamW(learning_rate=0.01, weight_decay=0.1, beta_2=0.6, amsgrad=True)),
    ("sgd_clipnorm", lambda: O.SGD(learning_rate=0.1, momentum=0.9, clipnorm=2.0)),
    ("adam_clipvalue", lambda: O.Adam(learning_rate=0.01, clipvalue=0.5)),
    ("sgd_global_clipnorm", lambda: O.SGD(learning_rate=0.1, global_clipnorm=3.0)),
    ("adam_global_clipnorm", lambda: O.Adam(learning_rate=0.01, global_clipnorm=3.0)),
    ("sgd_weight_decay", lambda: O.SGD(learning_rate=0.1, weight_decay=0.2)),
    ("rmsprop_clipvalue", lambda: O.RMSprop(learning_rate=0.01, clipvalue=0.5)),
    ("adagrad_clipnorm", lambda: O.Adagrad(learning_rate=0.05, clipnorm=1.0)),
]


def show(*words_and_values):
    *words, values = words_and_values
    print(*words, " ".join(repr(float(v)) for v in np.asarray(values).ravel()))


def run(make):
    opt = make()
    variables = [keras.Variable(w0), keras.Variable(w1)]
    trace = []
    for s in range(1, STEPS + 1):
        opt.apply_gradients(zip(grads(s), variables))
        trace.append([np.asarray(v.numpy()) for v in variables])
    return opt, trace


print(f"# keras {keras.__version__}, jax {jax.__version__}")
show("input", "w0", w0)
show("input", "w1", w1)
for s in range(1, STEPS + 1):
    g0, g1 = grads(s)
    show("grad", f"step{s}", "w0", g0)
    show("grad", f"step{s}", "w1", g1)
for name, make in CONFIGS:
    opt, trace = run(make)
    config = {k: v for k, v in opt.get_config().items() if k != "name"}
    print("config", name, type(opt).__name__, json.dumps(config, sort_keys=True))
    for s, values in enumerate(trace, start=1):
        show(name, f"step{s}", "w0", values[0])
        show(name, f"step{s}", "w1", values[1])

# The options under test change the result (amsgrad where the second moment falls, clipping
# where the norm or a value exceeds the limit), so the comparisons check them.
pairs = [
    ("adam_amsgrad", lambda: O.Adam(learning_rate=0.01, beta_2=0.6)),
    ("adamw_amsgrad", lambda: O.AdamW(learning_rate=0.01, weight_decay=0.1, beta_2=0.6)),
    ("sgd_clipnorm", lambda: O.SGD(learning_rate=0.1, momentum=0.9)),
    ("adam_clipvalue", lambda: O.Adam(learning_rate=0.01)),
    ("sgd_global_clipnorm", lambda: O.SGD(learning_rate=0.1)),
    ("adam_global_clipnorm", lambda: O.Adam(learning_rate=0.01)),
]
configs = dict(CONFIGS)
for name, without in pairs:
    with_option = run(configs[name])[1][-1]
    plain = run(without)[1][-1]
    assert any(not np.array_equal(a, b) for a, b in zip(with_option, plain)), name
