"""Acceptance bars: the parity an exported file must reach before it is published.

Every exporter runs the file it wrote against the Keras model (`verify`) and
publishes it only if the figures meet the bar of its quantization mode; a file
below its bar raises `ParityError`, and nothing new appears at the path (an
existing file there is left as it was).

Default bars (relative errors are against the largest |output| of the Keras
model on the same inputs, at least 1):

- float32: max abs error <= 1e-4 (relative).
- float16: max abs error <= 2e-2 (relative).
- dynamic, int8, int16x8 (post-training): max abs error <= 0.25 (relative) and
  top-1 agreement >= 0.9.
- int8-qat, int16x8-qat, qdq-u8s8, qdq-u8u8, qdq-s8s8 (QAT): >= 80% of output elements within
  one output step and top-1 agreement >= 0.9.

The QAT bar is loose on purpose: two correct integer runtimes disagree by one
step on up to 20% of a deep network's outputs (LiteRT's XNNPACK against its
reference kernels on a ResNet50 int8 file: 80.6%); the bar catches files that
compute something else, not rounding. The tests hold tfopt to far tighter figures.

Example:

```python
bar = tfopt.export.ParityBar(min_top1_agreement=0.95)
tfopt.export.to_tflite(model, "model_int8.tflite", "int8",
                       representative_data=x_train[:200], parity_bar=bar)
tfopt.export.to_tflite(model, "model.tflite", parity_bar=False)   # publish whatever it is
```
"""

from __future__ import annotations

import dataclasses


class ParityError(ValueError):
    """An exported file computes too far from its Keras model to be published."""


@dataclasses.dataclass(frozen=True)
class ParityBar:
    """What an exported file must reach against its Keras model to be published.

    A criterion set to None is not checked; a criterion that does not apply to the
    file (top-1 agreement without a classifier output, steps without a quantized
    output) is skipped.

    Args:
        max_rel_error: the largest |file - keras| allowed, relative to the largest
            |keras output| (at least 1). Defaults to `None`.
        min_top1_agreement: the smallest fraction of samples whose argmax agrees,
            for classifier outputs. Defaults to `None`.
        min_within_one_step: the smallest fraction of output elements within one
            output quantization step, for quantized outputs. Defaults to `None`.

    Raises:
        ValueError: a criterion outside its range.
    """

    max_rel_error: float | None = None
    min_top1_agreement: float | None = None
    min_within_one_step: float | None = None

    def __post_init__(self):
        for name in ("min_top1_agreement", "min_within_one_step"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ValueError(
                    f"Argument `{name}` must be None or a fraction in [0, 1]. "
                    f"Received: {name}={value!r}"
                )
        value = self.max_rel_error
        if value is not None and not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(
                f"Argument `max_rel_error` must be None or >= 0. Received: max_rel_error={value!r}"
            )

    def failures(self, parity) -> list[str]:
        """What a `VerifyResult` misses of this bar (empty when it passes).

        NaN figures always fail.
        """
        missed = []
        if self.max_rel_error is not None:
            scale = max(1.0, parity.reference_peak or 0.0)
            allowed = self.max_rel_error * scale
            if not parity.max_abs_error <= allowed:  # also catches NaN
                missed.append(
                    f"max abs error {parity.max_abs_error:.3g} > {allowed:.3g} "
                    f"({self.max_rel_error:g} x largest |output| {scale:.3g})"
                )
        top1, within = parity.top1_agreement, parity.within_one_step
        low_top1 = top1 is not None and not top1 >= (self.min_top1_agreement or 0.0)
        if self.min_top1_agreement is not None and low_top1:  # `not >=`: NaN fails too
            missed.append(f"top-1 agreement {top1:.2%} < {self.min_top1_agreement:.2%}")
        low_steps = within is not None and not within >= (self.min_within_one_step or 0.0)
        if self.min_within_one_step is not None and low_steps:
            missed.append(
                f"{within:.2%} of outputs within one step < {self.min_within_one_step:.2%}"
            )
        return missed


_POST_TRAINING = ParityBar(max_rel_error=0.25, min_top1_agreement=0.9)
_QAT = ParityBar(min_within_one_step=0.8, min_top1_agreement=0.9)
DEFAULT_BARS = {
    "float32": ParityBar(max_rel_error=1e-4),
    "float16": ParityBar(max_rel_error=2e-2),
    "dynamic": _POST_TRAINING,
    "int8": _POST_TRAINING,
    "int16x8": _POST_TRAINING,
    "int8-qat": _QAT,
    "int16x8-qat": _QAT,
    "qdq-u8s8": _QAT,
    "qdq-u8u8": _QAT,
    "qdq-s8s8": _QAT,
}


def resolve_bar(parity_bar, quantization: str) -> ParityBar | None:
    """The bar an export is held to: the mode's default (None), none (False), or the given.

    Raises:
        TypeError: neither None, False nor a ParityBar.
    """
    if parity_bar is None:
        return DEFAULT_BARS.get(quantization, _POST_TRAINING)
    if parity_bar is False:
        return None
    if isinstance(parity_bar, ParityBar):
        return parity_bar
    raise TypeError(
        "Argument `parity_bar` must be None (the mode's default bar), False (no bar) or a "
        f"tfopt.export.ParityBar. Received: parity_bar={parity_bar!r}"
    )


def check(parity, bar: ParityBar | None, path, quantization: str) -> None:
    """Raises `ParityError` when `parity` misses `bar` (nothing when bar is None)."""
    if bar is None:
        return
    missed = bar.failures(parity)
    if missed:
        raise ParityError(
            f"The {quantization} file for '{path}' is not published: it misses its parity bar "
            f"on {parity.num_samples} samples: {'; '.join(missed)}. Check the calibration data "
            "(same preparation as the inputs at inference) and the model; pass parity_bar="
            "tfopt.export.ParityBar(...) to set another bar, or parity_bar=False to publish "
            "it anyway."
        )
