# Keras 3's losses on fixed labels and predictions: each loss's value (the mean over the batch,
# Keras' default "sum_over_batch_size" reduction) and its gradient with respect to the
# predictions (JAX's autodiff); the numbers crates/nn/tests/losses.rs compares nn's losses with.
# Every case is a [3, 4] batch. For each it prints "CASE spec ..." (the loss and its
# parameters), then "CASE y_true ...", "CASE y_pred ...", "CASE value ..." and "CASE grad ...",
# so the test reads its inputs from the output too.
# - categorical cross-entropy on probabilities (rows not summing to 1, so Keras' renormalisation
#   counts) and on logits (from_logits=True, the fused softmax path), label_smoothing 0, 0.1, 0.2;
# - binary cross-entropy on probabilities (hard and soft labels), label_smoothing 0, 0.1, 0.2;
# - Huber with delta 1.0 and 0.5, on errors either side of delta (and on it);
# - KL divergence on distributions with zeros, and predictions near zero (below and above
#   Keras' clipping at 1e-7).
# Run: KERAS_BACKEND=jax python benches/keras/losses.py
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras
import numpy as np


def f32(rows):
    return np.array(rows, dtype=np.float32)


def show(tag, what, values):
    print(tag, what, " ".join(repr(float(v)) for v in np.asarray(values).ravel()))


def case(tag, spec, loss, y_true, y_pred):
    value = loss(jnp.asarray(y_true), jnp.asarray(y_pred))
    grad = jax.grad(lambda p: loss(jnp.asarray(y_true), p))(jnp.asarray(y_pred))
    print(tag, "spec", spec)
    show(tag, "y_true", y_true)
    show(tag, "y_pred", y_pred)
    show(tag, "value", [value])
    show(tag, "grad", grad)


print(f"# keras {keras.__version__}, jax {jax.__version__}")

one_hot = f32([[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
probs = f32([[0.1, 0.6, 0.2, 0.05], [0.3, 0.3, 0.2, 0.25], [0.7, 0.1, 0.15, 0.1]])
logits = f32([[0.5, 2.0, -1.0, 0.1], [1.5, -0.3, 0.2, 0.8], [-2.0, 0.4, 3.0, -0.7]])
for ls in [0.0, 0.1, 0.2]:
    cce = keras.losses.CategoricalCrossentropy(label_smoothing=ls)
    case(f"cce_probs_{ls}", f"categorical_crossentropy {ls} probabilities", cce, one_hot, probs)
    cce = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls)
    case(f"cce_logits_{ls}", f"categorical_crossentropy {ls} logits", cce, one_hot, logits)

binary = f32([[1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0.3]])
binary_probs = f32([[0.9, 0.2, 0.6, 0.45], [0.05, 0.7, 0.99, 0.3], [0.5, 0.8, 0.1, 0.4]])
for ls in [0.0, 0.1, 0.2]:
    bce = keras.losses.BinaryCrossentropy(label_smoothing=ls)
    case(f"bce_{ls}", f"binary_crossentropy {ls} probabilities", bce, binary, binary_probs)

targets = f32([[0.0, 1.0, -1.0, 2.0], [0.5, -0.5, 0.0, 0.0], [3.0, -2.0, 1.0, 0.25]])
# Errors: 0.2, -0.7, 1.3 (past delta 1), -2.5; 1.0 (on delta 1), 0.45, -0.55, 0.0;
# -3.1, 0.9, 0.5 (on delta 0.5), 0.05.
huber_pred = targets + f32([[0.2, -0.7, 1.3, -2.5], [1.0, 0.45, -0.55, 0.0], [-3.1, 0.9, 0.5, 0.05]])
for delta in [1.0, 0.5]:
    case(f"huber_{delta}", f"huber {delta} probabilities", keras.losses.Huber(delta=delta), targets, huber_pred)

dist = f32([[0.0, 0.5, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4], [1e-8, 0.0, 0.6, 0.4]])
kl_pred = f32([[1e-9, 0.3, 0.6999, 1e-4], [2e-6, 0.5, 0.2, 0.299998], [0.25, 1e-9, 0.35, 0.4]])
case("kld", "kl_divergence 0 probabilities", keras.losses.KLDivergence(), dist, kl_pred)
