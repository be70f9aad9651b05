# Keras 3's ZeroPadding2D, UpSampling2D, LeakyReLU, ReLU and Rescaling on a fixed input, and
# the input gradient of sum(output * w) for fixed weights: the numbers
# crates/nn/tests/image_layers.rs compares nn's layers with. Also each class's automatic name
# (the first of its class made) and config, and the same for SpatialDropout2D, whose random
# mask is not compared (its tests check its definition instead).
# Input x[n] = sin(0.7 n + 0.3) * (1 + n % 3) for flat index n over [2, 3, 4, 3];
# w[m] = cos(0.5 m) for flat index m over each output's shape.
# Run: KERAS_BACKEND=jax python benches/keras/image_layers.py
import json
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras
import numpy as np

SHAPE = (2, 3, 4, 3)
n = np.arange(np.prod(SHAPE))
x = (np.sin(0.7 * n + 0.3) * (1 + n % 3)).astype(np.float32).reshape(SHAPE)


def show(tag, what, values):
    print(tag, what, " ".join(repr(float(v)) for v in np.asarray(values).ravel()))


print(f"# keras {keras.__version__}, jax {jax.__version__}")
# The first layer of each class made gets the bare automatic name.
for layer in [
    keras.layers.ZeroPadding2D(padding=((1, 2), (3, 0))),
    keras.layers.UpSampling2D(size=(2, 3)),
    keras.layers.SpatialDropout2D(0.25),
    keras.layers.LeakyReLU(),
    keras.layers.ReLU(max_value=1.5, negative_slope=0.1),
    keras.layers.Rescaling(scale=1 / 127.5, offset=-1.0),
]:
    config = {k: v for k, v in layer.get_config().items() if k not in ("name", "dtype", "trainable")}
    print("config", type(layer).__name__, layer.name, json.dumps(config, sort_keys=True))

cases = [
    ("zero_padding", keras.layers.ZeroPadding2D(padding=((1, 2), (3, 0)))),
    ("zero_padding_int", keras.layers.ZeroPadding2D(padding=2)),
    ("up_sampling", keras.layers.UpSampling2D(size=(2, 3))),
    ("leaky_relu", keras.layers.LeakyReLU()),
    ("leaky_relu_0.1", keras.layers.LeakyReLU(negative_slope=0.1)),
    ("relu", keras.layers.ReLU()),
    ("relu_capped", keras.layers.ReLU(max_value=1.5, negative_slope=0.1)),
    ("relu_threshold", keras.layers.ReLU(max_value=2.0, negative_slope=0.2, threshold=0.5)),
    ("relu_threshold_uncapped", keras.layers.ReLU(threshold=0.5)),
    ("rescaling", keras.layers.Rescaling(scale=1 / 127.5, offset=-1.0)),
]
for tag, layer in cases:
    y = np.asarray(layer(x))
    w = np.cos(0.5 * np.arange(y.size)).astype(np.float32).reshape(y.shape)
    dx = np.asarray(jax.grad(lambda v: jnp.sum(layer(v) * w))(jnp.asarray(x)))
    print(tag, "shape", " ".join(str(d) for d in y.shape))
    show(tag, "y", y)
    show(tag, "dx", dx)
