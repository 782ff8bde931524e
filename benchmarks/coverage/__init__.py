"""The coverage suite (benchmarks/suite_coverage.py), one concern per module.

- `models`: the models measured, each buildable with `keras` or `tf_keras`.
- `data`: digits images, and the seeded text and tagging tasks generated offline.
- `budget`: how long each model trains and on how many samples its files are compared.
- `files`: running an exported file outside `tfopt.export.verify` (tfmot's files),
  and each runtime's agreement with itself (the floor of a deep model's parity).
- `sides`: what quantizes and exports on each side (tfopt; tfmot with the TFLite
  converter and tf2onnx).
- `measure`: one model through float training, quantization, a QAT step and both
  exporters on one side; every failure kept as data in its row.
- `isolation`: the models of a side run in a child process, restarted past a crash.
- `child`: that child process (`python -m benchmarks.coverage.child`).
- `protocol`: the budgets and the runs (`run_tfopt`, `run_tfmot`).
- `render`: the BENCHMARKS.md section (prose in benchmarks/templates/coverage.md).

TensorFlow, Keras and tfopt are imported only inside the functions that measure.
benchmarks/suite_coverage.py, which the harness loads, re-exports the suite's four
members; this package exports nothing itself.
"""
