# Drives Keras 3's EarlyStopping and ReduceLROnPlateau with scripted monitored values, the ones
# the unit tests in crates/nn/src/callbacks/{early_stopping,learning_rate}.rs use, and prints
# what Keras does with them: epochs run, stopped epoch, best value, learning rate per epoch.
# Needs only keras and a backend (KERAS_BACKEND, default jax: `pip install keras jax`).
# Keras 3.15.1 printed (2026-12-07):
#   ES {} 3 2 4.0 / ES {'patience': 2} 4 3 4.0 / ES {'patience': 3} 6 0 2.0
#   ES min_delta 2 1 5.0 / ES baseline 4 0 4.85 / ES baseline stall 3 2 4.95 / ES stall 4 3 4.95
#   ES start_from_epoch 5 4 4.0
#   RLR 10 [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2] (as f32)
#   RLR min_delta 4 [1.0, 0.1, 0.01, 0.01] (as f32)
# (Keras' stopped_epoch 0 is "did not stop", None in nn.)
import os
os.environ.setdefault("KERAS_BACKEND", "jax")
import keras

class FakeModel:
    def __init__(self, lr):
        self.optimizer = keras.optimizers.SGD(learning_rate=lr)
        self.stop_training = False
        self.metrics = []
        self._w = 0
    def get_weights(self): return [self._w]
    def set_weights(self, w): self._w = w[0]

def run(cb, values, lr=0.1, key="val_loss"):
    m = FakeModel(lr); cb.set_model(m); cb.on_train_begin()
    rates = []; epochs = 0
    for e, v in enumerate(values):
        cb.on_epoch_end(e, {key: v}); epochs += 1
        rates.append(float(m.optimizer.learning_rate))
        if m.stop_training: break
    cb.on_train_end()
    return epochs, rates

ES = keras.callbacks.EarlyStopping
vals = [5.0, 4.0, 4.5, 4.2, 3.0, 2.0]
for kw in [dict(), dict(patience=2), dict(patience=3)]:
    cb = ES(**kw); n, _ = run(cb, vals); print("ES", kw, n, cb.stopped_epoch, cb.best)
v2 = [5.0, 4.95, 4.9, 4.85]
cb = ES(patience=1, min_delta=0.1); n, _ = run(cb, v2); print("ES min_delta", n, cb.stopped_epoch, cb.best)
cb = ES(patience=2, baseline=4.88); n, _ = run(cb, v2); print("ES baseline", n, cb.stopped_epoch, cb.best)
stall = [5.0, 4.95, 4.96, 4.97]
cb = ES(patience=2, baseline=4.88); n, _ = run(cb, stall); print("ES baseline stall", n, cb.stopped_epoch, cb.best)
cb = ES(patience=2); n, _ = run(cb, stall); print("ES stall", n, cb.stopped_epoch, cb.best)
cb = ES(start_from_epoch=3); n, _ = run(cb, [1.0, 2.0, 3.0, 4.0, 5.0]); print("ES start_from_epoch", n, cb.stopped_epoch, cb.best)
R = keras.callbacks.ReduceLROnPlateau
n, rates = run(R(factor=0.5, patience=2, cooldown=1, min_lr=0.2), [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3], lr=1.0)
print("RLR", n, rates)
n, rates = run(R(patience=1, min_delta=0.01), [1.0, 0.999, 0.998, 0.5], lr=1.0)
print("RLR min_delta", n, rates)
