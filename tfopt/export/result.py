"""ExportResult: what an exporter hands back."""

from __future__ import annotations

import dataclasses

from tfopt.export.acceptance import ParityBar
from tfopt.export.verify import VerifyResult


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """An exported file with its sizes and its parity against the Keras model.

    Attributes:
        path: where the file was written.
        format: the `ExportFormat` name: "tflite" or "onnx" (or a registered one).
        quantization: TFLite: "float32", "float16", "dynamic", "int8", "int16x8",
            or for a QAT model "int8-qat" / "int16x8-qat". ONNX: "float32", or for
            a QAT model "qdq-u8s8" / "qdq-s8s8" / "qdq-u8u8".
        bytes: size of the file.
        gzip_bytes: size of the file after gzip -9.
        parity: a `VerifyResult` from running the file against the model.
        verified_on: "data" when the parity inputs came from the caller
            (`verify_data` or `representative_data`), "random" when they were
            random samples of the input signature.
        notes: what the exporter had to decide on the caller's behalf (e.g. a
            batch size fixed at 1 for recurrent models).
        parity_bar: the `ParityBar` the file met before it was published (None
            when the caller passed `parity_bar=False`).
    """

    path: str
    format: str
    quantization: str
    bytes: int
    gzip_bytes: int
    parity: VerifyResult
    verified_on: str
    notes: tuple[str, ...] = ()
    parity_bar: ParityBar | None = None

    def as_dict(self) -> dict:
        """Returns the fields as a dict, `parity` as `VerifyResult.as_dict()` (no outputs)."""
        d = dataclasses.asdict(self)
        d["parity"] = self.parity.as_dict()
        d["parity_bar"] = None if self.parity_bar is None else dataclasses.asdict(self.parity_bar)
        return d

    def __str__(self) -> str:
        p = self.parity
        text = (
            f"{self.path}: {self.format} {self.quantization}, {self.bytes:,} bytes "
            f"({self.gzip_bytes:,} gzipped); max abs error {p.max_abs_error:.3g} on "
            f"{p.num_samples} {self.verified_on} samples"
        )
        if p.top1_agreement is not None:
            text += f", top-1 agreement {p.top1_agreement:.2%}"
        for note in self.notes:
            text += f" ({note})"
        return text
