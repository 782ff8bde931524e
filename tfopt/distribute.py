"""Training across workers: `fit` runs a compiled model's own train step under any strategy.

Keras 3's `model.fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`, even for
a plain Dense model (keras-team/keras#20585, open since TF 2.16: its per-replica
reduction `strategy.reduce("MEAN", value, axis=0)` fails on scalar losses). Long QAT
and pruning runs still need several machines, so `tfopt.distribute.fit` is the working
route: it distributes the data itself, runs the model's `train_step` (the one
`model.fit` would run, with tfopt's pruning and QAT updates inside it) under
`strategy.run`, and drives the usual Keras callbacks. Under any other strategy (one
device, `MirroredStrategy`) it is `model.fit`.

Example (each worker runs the same script with its own `TF_CONFIG`):

```python
# doc: no-run
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():                       # build and compile in the scope
    model = tfopt.pruning.prune_low_magnitude(build_model(), schedule)
    model.compile("adam", "sparse_categorical_crossentropy")
tfopt.distribute.fit(model, x, y, batch_size=64, epochs=10, strategy=strategy,
                     callbacks=[tfopt.pruning.UpdatePruningStep(),
                                keras.callbacks.BackupAndRestore(f"backup/worker_{index}")])
```
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["fit", "is_multi_worker"]

_SHUFFLE_SEED = 1337


def is_multi_worker(strategy) -> bool:
    """True for a strategy Keras 3's own `fit` cannot run (MultiWorkerMirroredStrategy)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _dataset(x, y, batch_size, shuffle):
    """(dataset of global batches, steps per epoch) from arrays or a batched tf.data."""
    if isinstance(x, tf.data.Dataset):
        if y is not None or batch_size is not None:
            raise ValueError(
                "Arguments `y` and `batch_size` must be None when `x` is a tf.data.Dataset "
                "(it yields (x, y) batches of the global batch size). Received: "
                f"y={'given' if y is not None else None}, batch_size={batch_size!r}"
            )
        steps = int(x.cardinality())
        return x, (steps if steps > 0 else None)
    batch_size = 32 if batch_size is None else batch_size
    if x is None or y is None:
        raise ValueError(
            "Arguments `x` and `y` are required (arrays, or a tf.data.Dataset as `x`). "
            f"Received: x={type(x).__name__}, y={type(y).__name__}"
        )
    n = len(tf.nest.flatten(x)[0])
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            f"Argument `batch_size` must be an int >= 1 (the global batch, over all "
            f"workers). Received: batch_size={batch_size!r}"
        )
    # Every worker must run the same steps: a last partial batch is dropped.
    steps = n // batch_size
    if steps == 0:
        raise ValueError(
            f"Argument `batch_size={batch_size}` is larger than the {n} samples given."
        )
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:  # the same seed on every worker: one order, reshuffled each epoch
        data = data.shuffle(n, seed=_SHUFFLE_SEED, reshuffle_each_iteration=True)
    return data.batch(batch_size, drop_remainder=True), steps


def fit(
    model: keras.Model,
    x=None,
    y=None,
    *,
    batch_size: int | None = None,
    epochs: int = 1,
    verbose="auto",
    callbacks=None,
    initial_epoch: int = 0,
    steps_per_epoch: int | None = None,
    shuffle: bool = True,
    strategy=None,
) -> keras.callbacks.History:
    """Trains `model` like `model.fit`, also under MultiWorkerMirroredStrategy.

    Under a multi-worker strategy: the data (arrays, or a tf.data.Dataset of
    `(x, y)` global batches) is sharded across workers by element, each step runs
    the compiled model's `train_step` on every replica (gradients all-reduced,
    so a step equals one on the whole global batch), and the callbacks get
    `on_train_begin` ... `on_train_end` with the replica-averaged logs.
    `BackupAndRestore` resumes from its last epoch (give each worker its own
    backup directory); `EarlyStopping` stops; `UpdatePruningStep`, `QATCallback`
    and `DistillationScheduler` work as under `fit` (a callback that rebuilds the
    train function, as `QATCallback` does, takes effect at the next step). Under
    any other strategy this is `model.fit(...)` with the same arguments.

    Args:
        model: a compiled Keras 3 model, built and compiled in `strategy.scope()`.
        x: inputs (array, list or dict of arrays), or a tf.data.Dataset of
            `(x, y)` batches. Defaults to `None`.
        y: targets, when `x` holds arrays. Defaults to `None`.
        batch_size: the global batch size over all workers, for arrays; under a
            multi-worker strategy a last partial batch is dropped, so that every
            worker runs the same steps. Defaults to `None` (Keras: 32).
        epochs: epochs to train. Defaults to `1`.
        verbose: as in `model.fit`. Defaults to `"auto"`.
        callbacks: Keras callbacks. Defaults to `None`.
        initial_epoch: the epoch to start from. Defaults to `0`.
        steps_per_epoch: steps of a dataset with no known length. Defaults to `None`.
        shuffle: shuffle arrays before each epoch (under a multi-worker strategy with
            the same seed on every worker, so all see one order). Defaults to `True`.
        strategy: the `tf.distribute.Strategy`. Defaults to `None`: the strategy of
            the current scope.

    Returns:
        The `keras.callbacks.History`.

    Raises:
        TypeError: `model` is not a compiled Keras 3 model.
        ValueError: missing or inconsistent data arguments, a bad batch size, or a
            model built outside the strategy's scope.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "compiled", False):
        raise TypeError(
            "Argument `model` must be a compiled Keras 3 model (compile it in "
            f"strategy.scope()). Received: model of type {type(model).__name__}"
        )
    strategy = strategy or tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            shuffle=shuffle,
        )
    if getattr(model, "distribute_strategy", strategy) is not strategy:
        raise ValueError(
            f"Model {model.name!r} was built outside the strategy's scope: build and compile "
            "it inside `with strategy.scope():`."
        )
    data, steps = _dataset(x, y, batch_size, shuffle)
    steps = steps_per_epoch or steps
    if not steps:
        raise ValueError("Argument `steps_per_epoch` is required for a dataset of unknown length.")
    distributed = _distribute(data, strategy)

    verbose = 1 if verbose == "auto" else verbose
    if not isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = keras.callbacks.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            verbose=verbose,
            epochs=epochs,
            steps=steps,
            model=model,
        )
    model.stop_training = False
    model.make_train_function()  # callbacks signal a retrace by replacing it
    average_local = _local_state_averager(model, strategy)
    built_for, step = None, None
    callbacks.on_train_begin()
    start = getattr(model, "_initial_epoch", None) or initial_epoch
    logs = {}
    for epoch in range(start, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        iterator = iter(distributed)
        for index in range(steps):
            callbacks.on_train_batch_begin(index)
            if built_for is not model.train_function:
                step, built_for = _step(model, strategy), model.train_function
            logs = {k: float(np.asarray(v)) for k, v in step(iterator).items()}
            callbacks.on_train_batch_end(index, logs)
            if model.stop_training:
                break
        average_local()  # before any callback saves the model
        callbacks.on_epoch_end(epoch, dict(logs))
        if model.stop_training:
            break
    callbacks.on_train_end(dict(logs))
    return next(c for c in callbacks.callbacks if isinstance(c, keras.callbacks.History))


def _distribute(data, strategy):
    """The dataset with each global batch split across replicas in order.

    Worker i's replicas take the i-th slice of every batch, so one step trains on
    exactly the samples one device would (tf.data's automatic sharding would hand
    whole batches to alternate workers).
    """
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context):
        pipes, pipe = context.num_input_pipelines, context.input_pipeline_id
        per_pipe = replicas // pipes  # replicas fed by this worker

        def my_slice(*batch):
            size = tf.shape(tf.nest.flatten(batch)[0])[0]
            tf.debugging.assert_equal(
                size % replicas,
                0,
                message=f"a global batch must split evenly over the {replicas} replicas",
            )
            share = size // pipes
            return tf.nest.map_structure(lambda t: t[pipe * share : (pipe + 1) * share], batch)

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF
        )
        local = data.with_options(options).map(my_slice)
        if per_pipe == 1:
            return local
        # Several replicas on this worker: each takes its consecutive part of the slice.
        return local.flat_map(
            lambda *chunk: tf.data.Dataset.from_tensor_slices(
                tf.nest.map_structure(lambda t: tf.reshape(t, [per_pipe, -1, *t.shape[1:]]), chunk)
            )
        )

    return strategy.distribute_datasets_from_function(dataset_fn)


def _local_state_averager(model, strategy):
    """A function averaging, over all replicas, the state each replica updates alone.

    BatchNormalization's moving statistics are non-trainable variables without an
    aggregation: every replica updates its copy from its own batch, so the workers'
    copies drift apart. Averaging them at the end of each epoch leaves one model on
    every worker (what a checkpoint of any worker holds).
    """
    local = [
        v
        for v in model.variables
        if not v.trainable
        and getattr(v, "aggregation", "none") == "none"
        and "float" in str(v.dtype)
    ]
    if not local:
        return lambda: None

    @tf.function
    def average():
        values = strategy.run(lambda: [tf.identity(v.value) for v in local])
        for variable, value in zip(local, values):
            variable.assign(strategy.reduce("MEAN", value, axis=None))

    return average


def _step(model, strategy):
    """One training step on the next distributed batch.

    The model's own `train_step` runs on every replica; its logs are averaged over
    replicas with a scalar reduce (no axis).
    """

    @tf.function
    def step(iterator):
        outputs = strategy.run(model.train_step, args=(next(iterator),))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in outputs.items()}

    return step
