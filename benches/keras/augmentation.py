# Keras 3's image resampling and augmentation layers on a fixed input: the numbers
# crates/nn/tests/augmentation.rs compares nn's with.
# Input x[n] = sin(0.7 n + 0.3) * (1 + n % 3) over [2, 7, 9, 2] (flat index n).
# 1. keras.ops.image.affine_transform with two fixed transforms, for every fill mode and
#    interpolation, fill value 0.25 ("ops <mode> <interpolation>").
# 2. The layers in training mode with one-value factor ranges, so that their "random"
#    transform is fixed ("layer <tag>").
# Run: KERAS_BACKEND=jax python benches/keras/augmentation.py
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import keras
import numpy as np

SHAPE = (2, 7, 9, 2)
n = np.arange(np.prod(SHAPE))
x = (np.sin(0.7 * n + 0.3) * (1 + n % 3)).astype(np.float32).reshape(SHAPE)
s, c = np.sin(0.3), np.cos(0.3)
transforms = np.array(
    [
        [c, -s, 4.0 - 4.0 * c + 3.0 * s + 0.37, s, c, 3.0 - 4.0 * s - 3.0 * c - 0.21, 0.0, 0.0],
        [1.7, 0.13, -3.3, -0.07, 1.45, -2.1, 0.0, 0.0],
    ],
    dtype=np.float32,
)


def show(tag, values):
    print(tag, " ".join(repr(float(v)) for v in np.asarray(values).ravel()))


print(f"# keras {keras.__version__}, jax {jax.__version__}")
for mode in ["reflect", "wrap", "constant", "nearest"]:
    for interpolation in ["nearest", "bilinear"]:
        y = keras.ops.image.affine_transform(x, transforms, interpolation, mode, 0.25)
        show(f"ops {mode} {interpolation}", y)
layers = {
    "translation": keras.layers.RandomTranslation((0.2, 0.2), (-0.1, -0.1)),
    "rotation": keras.layers.RandomRotation((0.1, 0.1)),
    "zoom": keras.layers.RandomZoom((0.3, 0.3), (-0.2, -0.2)),
    "rotation_constant_nearest": keras.layers.RandomRotation(
        (0.05, 0.05), fill_mode="constant", interpolation="nearest", fill_value=0.5
    ),
}
for tag, layer in layers.items():
    show(f"layer {tag}", layer(x, training=True))
