"""What the child-process training scripts share: the digits CNN and a SIGKILL callback."""

import os
import signal

import keras

L = keras.layers


def cnn(name: str, filters: int, batchnorm: bool = True) -> keras.Model:
    """Conv (+BatchNorm) + ReLU, global pooling, Dense(10) on 8x8x1 digits."""
    inp = keras.Input((8, 8, 1))
    x = L.Conv2D(filters, 3, padding="same", use_bias=not batchnorm)(inp)
    if batchnorm:
        x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x), name=name)


class KillAt(keras.callbacks.Callback):
    """SIGKILLs the process at (epoch, batch): no cleanup, no flushing, like the OOM killer."""

    def __init__(self, at):
        super().__init__()
        self.at, self.epoch = tuple(at), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
