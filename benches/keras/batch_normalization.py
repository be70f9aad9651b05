# Keras 3's BatchNormalization on a fixed input: the training-mode output, the gradients of
# sum(output * w) with respect to the input, gamma and beta, the moving statistics after one and
# after three training calls, and the inference-mode output; the numbers
# crates/nn/tests/batch_normalization.rs compares nn's layer with.
# Input x[n] = sin(0.7 n + 0.3) * (1 + n % 3) + (n % 2) for flat index n over [4, 3, 3, 2];
# w[n] = cos(0.5 n); gamma [1.5, -0.7], beta [0.2, 0.4], moving mean [0.1, -0.2], moving
# variance [0.9, 1.3]; the three training calls see x, 2x + 1 and x - 0.5. The same again with
# axis=1 (the layer normalises over the second axis) as "axis1".
# Run: KERAS_BACKEND=jax python benches/keras/batch_normalization.py
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras
import numpy as np

SHAPE = (4, 3, 3, 2)
n = np.arange(np.prod(SHAPE))
x = (np.sin(0.7 * n + 0.3) * (1 + n % 3) + n % 2).astype(np.float32).reshape(SHAPE)
w = np.cos(0.5 * n).astype(np.float32).reshape(SHAPE)


def show(tag, what, values):
    print(tag, what, " ".join(repr(float(v)) for v in np.asarray(values).ravel()))


print(f"# keras {keras.__version__}, jax {jax.__version__}")
for tag, axis in [("last", -1), ("axis1", 1)]:
    layer = keras.layers.BatchNormalization(axis=axis)
    layer.build(SHAPE)
    c = SHAPE[axis]
    gamma = np.linspace(1.5, -0.7, c).astype(np.float32)
    beta = np.linspace(0.2, 0.4, c).astype(np.float32)
    mean = np.linspace(0.1, -0.2, c).astype(np.float32)
    var = np.linspace(0.9, 1.3, c).astype(np.float32)
    layer.set_weights([gamma, beta, mean, var])
    show(tag, "infer", layer(x, training=False))

    def objective(trainable, x):
        y, _ = layer.stateless_call(trainable, [jnp.asarray(mean), jnp.asarray(var)], x, training=True)
        return jnp.sum(y * w)

    trainable = [jnp.asarray(gamma), jnp.asarray(beta)]
    y, _ = layer.stateless_call(trainable, [jnp.asarray(mean), jnp.asarray(var)], x, training=True)
    show(tag, "train", y)
    (dgamma, dbeta), dx = jax.grad(objective, argnums=(0, 1))(trainable, jnp.asarray(x))
    show(tag, "dx", dx)
    show(tag, "dgamma", dgamma)
    show(tag, "dbeta", dbeta)
    for i, xi in enumerate([x, 2 * x + 1, x - 0.5]):
        layer(xi, training=True)
        if i in (0, 2):
            show(tag, f"moving_mean{i + 1}", layer.moving_mean.numpy())
            show(tag, f"moving_variance{i + 1}", layer.moving_variance.numpy())
