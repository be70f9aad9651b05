# Keras 3's metrics on fixed predictions: the numbers crates/nn/tests/metrics.rs compares nn's
# `evaluate` with. Categorical: logits z[i, j] = 3 sin(0.37 (10 i + j) + 0.5 j) over [64, 10],
# + 2.5 y, probabilities softmax(z), labels y = onehot((7 i + 3) % 10). Binary: labels b = 1
# where cos(0.83 i) > -0.2, scores sigmoid(2.5 sin(0.61 i + 0.2) + 1.5 (2b - 1)) over [64, 1].
# Logits get 2.5 added at the label and binary logits 1.5 towards it, so the metrics are
# far from chance.
# Run: KERAS_BACKEND=jax python benches/keras/metrics.py
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import keras
import numpy as np

i = np.arange(64)[:, None]
j = np.arange(10)[None, :]
y = keras.utils.to_categorical((7 * np.arange(64) + 3) % 10, 10).astype(np.float32)
z = (3 * np.sin(0.37 * (10 * i + j) + 0.5 * j) + 2.5 * y).astype(np.float32)
p = np.asarray(keras.ops.softmax(z, axis=-1))
b = (np.cos(0.83 * np.arange(64)) > -0.2).astype(np.float32)[:, None]
t = 2.5 * np.sin(0.61 * np.arange(64) + 0.2)[:, None] + 1.5 * (2 * b - 1)
s = np.asarray(keras.ops.sigmoid(t.astype(np.float32)))

print(f"# keras {keras.__version__}, jax {jax.__version__}")
metrics = {
    "categorical accuracy": (keras.metrics.CategoricalAccuracy(), y, p),
    "categorical top_k_categorical_accuracy": (keras.metrics.TopKCategoricalAccuracy(), y, p),
    "categorical top_2": (keras.metrics.TopKCategoricalAccuracy(k=2), y, p),
    "categorical precision": (keras.metrics.Precision(), y, p),
    "categorical recall": (keras.metrics.Recall(), y, p),
    "categorical auc": (keras.metrics.AUC(), y, p),
    "binary accuracy": (keras.metrics.BinaryAccuracy(), b, s),
    "binary precision": (keras.metrics.Precision(), b, s),
    "binary recall": (keras.metrics.Recall(), b, s),
    "binary auc": (keras.metrics.AUC(), b, s),
}
for tag, (metric, labels, scores) in metrics.items():
    # In batches of 16, as the test's evaluate runs.
    for start in range(0, 64, 16):
        metric.update_state(labels[start:start + 16], scores[start:start + 16])
    print(tag, repr(float(metric.result())))
