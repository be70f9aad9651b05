# Keras 3's GlobalAveragePooling2D and GlobalMaxPooling2D on a fixed input, and the gradient of
# sum(output * weights) for fixed weights: the numbers crates/nn/tests/global_pooling.rs
# compares nn's layers with. Input x[b, i, j, c] = sin(0.7 * n + 0.3) * (1 + n % 3) for its
# flat index n over [2, 3, 4, 5]; weights w[b, c] = cos(0.5 * m) for flat index m over [2, 5].
# Run: KERAS_BACKEND=jax python benches/keras/global_pooling.py
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras
import numpy as np

n = np.arange(2 * 3 * 4 * 5)
x = (np.sin(0.7 * n + 0.3) * (1 + n % 3)).astype(np.float32).reshape(2, 3, 4, 5)
w = np.cos(0.5 * np.arange(10)).astype(np.float32).reshape(2, 5)
print(f"# keras {keras.__version__}, jax {jax.__version__}")
for layer in [keras.layers.GlobalAveragePooling2D(), keras.layers.GlobalMaxPooling2D()]:
    y = np.asarray(layer(x))
    dx = np.asarray(jax.grad(lambda v: jnp.sum(layer(v) * w))(jnp.asarray(x)))
    print(type(layer).__name__, "y", " ".join(repr(float(v)) for v in y.ravel()))
    print(type(layer).__name__, "dx", " ".join(repr(float(v)) for v in dx.ravel()))
