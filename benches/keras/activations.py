# Keras 3's activations on a fixed grid, with their derivatives (JAX's autodiff of the same
# functions): the fixture crates/nn/tests/data/keras-activations.txt that
# crates/nn/tests/activations.rs compares nn's Activation with.
# Needs keras and jax (`pip install keras jax`); run from the repository root:
#   KERAS_BACKEND=jax python benches/keras/activations.py > crates/nn/tests/data/keras-activations.txt
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras
import numpy as np

NAMES = ["relu", "tanh", "sigmoid", "softplus", "leaky_relu", "elu", "gelu", "silu", "swish"]
# Both tails, the kinks, and small values where cancellation would show.
xs = np.concatenate([np.linspace(-6.0, 6.0, 49), [-1e-3, -1e-5, 1e-5, 1e-3, -0.25, 0.3]]).astype(np.float32)

print(f"# keras {keras.__version__}, jax {jax.__version__}: name x y dy/dx")
for name in NAMES:
    f = keras.activations.get(name)
    ys = np.asarray(f(jnp.asarray(xs)))
    dys = np.asarray(jax.vmap(jax.grad(lambda v: f(v)))(jnp.asarray(xs)))
    for x, y, dy in zip(xs, ys, dys):
        print(f"{name} {float(x)!r} {float(y)!r} {float(dy)!r}")
