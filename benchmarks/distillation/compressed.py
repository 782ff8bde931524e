"""The compressed student: distilled while pruned, then QAT with the zeros kept, in int8 files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.distillation.config import (
    COMPRESSED_ARCH,
    SPARSITY,
)
from benchmarks.distillation.training import _ce, _distiller, _fit, _model


def _file_sparsity(path) -> float:
    """Fraction of zero weights over the CONV_2D/FULLY_CONNECTED weight tensors of a .tflite.

    Read back with LiteRT from the file itself; in a full-integer file the weights are
    symmetric int8, so a stored 0 is exactly a zero weight.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    weights = [
        np.asarray(interpreter.get_tensor(int(op["inputs"][1]))).ravel()
        for op in interpreter._get_ops_details()
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    ]
    return float(np.mean(np.concatenate(weights) == 0))


def _int8_row(model, name, x, x_test, y_test, tmp, **extra) -> dict:
    from tfopt.export import to_tflite

    path = Path(tmp) / f"{name}.tflite"
    result = to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=x[: common.CALIBRATION_SAMPLES],
        verify_data=x_test[:128],
    )
    return {
        "kind": "compressed",
        "model": name,
        "accuracy": common.tflite_accuracy(path, x_test, y_test),
        "bytes": result.bytes,
        "gzip_bytes": result.gzip_bytes,
        "parity_top1": result.parity.top1_agreement,
        "file_sparsity": _file_sparsity(path),
        **extra,
    }


def _compressed_rows(
    keras, teacher, x, y, x_test, y_test, epochs: int, temperature: float, alpha: float
) -> list[dict]:
    """Teacher and scratch student vs a distilled, 80%-pruned student, then QAT, in int8."""
    try:
        import tfopt.pruning as pruning
        import tfopt.quantization as quantization
    except ImportError as err:  # the subpackages are developed in parallel
        return [{"kind": "compressed", "model": "unavailable", "error": str(err)}]

    steps = epochs * int(np.ceil(len(x) / common.BATCH_SIZE))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(_int8_row(teacher, "teacher", x, x_test, y_test, tmp))
        common.set_seed(keras, common.SEEDS[0])
        scratch = _model(keras, COMPRESSED_ARCH, "student")
        initial = scratch.get_weights()
        common.compile_cnn(scratch, keras)
        _fit(scratch, x, y, epochs, keras)
        rows.append(_int8_row(scratch, "scratch", x, x_test, y_test, tmp))

        common.set_seed(keras, common.SEEDS[0])
        student = _model(keras, COMPRESSED_ARCH, "student")
        student.set_weights(initial)
        schedule = pruning.PolynomialDecay(
            0.0, SPARSITY, begin_step=0, end_step=(2 * steps) // 3, frequency=10
        )
        pruned = pruning.prune_low_magnitude(student, pruning_schedule=schedule)
        distiller = _distiller(keras, teacher, pruned, temperature=temperature, alpha=alpha)
        distiller.fit(
            x,
            y,
            epochs=epochs,
            batch_size=common.BATCH_SIZE,
            callbacks=[pruning.UpdatePruningStep()],
            verbose=0,
        )
        stripped = pruning.strip_pruning(distiller.student)
        rows.append(
            _int8_row(
                stripped,
                "distilled_pruned",
                x,
                x_test,
                y_test,
                tmp,
                float_accuracy=common.keras_accuracy(stripped, x_test, y_test),
            )
        )

        qat_epochs = max(1, epochs // 5)
        qat_distiller = _distiller(
            keras,
            teacher,
            quantization.quantize_model(stripped, preserve_sparsity=True),
            temperature=temperature,
            alpha=alpha,
        )
        qat_distiller.compile(
            keras.optimizers.Adam(common.LEARNING_RATE / 10), _ce(keras), metrics=["accuracy"]
        )
        qat_distiller.fit(x, y, epochs=qat_epochs, batch_size=common.BATCH_SIZE, verbose=0)
        rows.append(
            _int8_row(
                qat_distiller.student,
                "distilled_pruned_qat",
                x,
                x_test,
                y_test,
                tmp,
                qat_epochs=qat_epochs,
            )
        )
    for row in rows[1:]:
        row["params"] = scratch.count_params()
        row["epochs"] = epochs
        row["temperature"], row["alpha"] = temperature, alpha
    rows[0]["params"] = teacher.count_params()
    return rows
