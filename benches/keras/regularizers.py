# Keras 3's weight regularizers in training: the numbers crates/nn/tests/regularizers.rs
# compares nn's with. A model Conv2D(2, 2x2, kernel_regularizer=L1(0.03)) -> Flatten ->
# Dense(2, kernel_regularizer=L1L2(0.01, 0.02), bias_regularizer=L2(0.05)) on [3, 3, 1] inputs,
# weights w[n] = 0.4 sin(0.9 n + k + 0.1) for the k-th weight (flat index n; none exactly 0,
# where JAX differentiates |w| as 1 and TensorFlow as 0), inputs
# x[n] = cos(0.3 n) over [4, 3, 3, 1], targets t[n] = sin(0.5 n) over [4, 2]; mean squared
# error, SGD(0.1). Prints the evaluate loss (with the penalties), then the weights after one
# step on the 4 samples.
# Run: KERAS_BACKEND=jax python benches/keras/regularizers.py
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import keras
import numpy as np

model = keras.Sequential([
    keras.Input((3, 3, 1)),
    keras.layers.Conv2D(2, 2, kernel_regularizer=keras.regularizers.L1(0.03)),
    keras.layers.Flatten(),
    keras.layers.Dense(2, kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02),
                       bias_regularizer=keras.regularizers.L2(0.05)),
])
weights = []
for k, w in enumerate(model.get_weights()):
    n = np.arange(w.size)
    weights.append((0.4 * np.sin(0.9 * n + k + 0.1)).astype(np.float32).reshape(w.shape))
model.set_weights(weights)
x = np.cos(0.3 * np.arange(36)).astype(np.float32).reshape(4, 3, 3, 1)
t = np.sin(0.5 * np.arange(8)).astype(np.float32).reshape(4, 2)
model.compile(loss="mse", optimizer=keras.optimizers.SGD(0.1))
print(f"# keras {keras.__version__}, jax {jax.__version__}")
print("loss", repr(float(model.evaluate(x, t, batch_size=4, verbose=0))))
model.train_on_batch(x, t)
for k, w in enumerate(model.get_weights()):
    print(f"weights{k}", " ".join(repr(float(v)) for v in w.ravel()))
