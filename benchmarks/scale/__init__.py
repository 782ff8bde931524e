"""The scale suite (benchmarks/suite_scale.py), one concern per module.

- `budget`: the models, sizes, steps and rounds of a full and a --quick run.
- `data`: the synthetic images and labels every part trains, calibrates and verifies on.
- `sides`: what builds, quantizes and prunes on each side (tfopt on Keras 3, tfmot on
  tf_keras), and one whole-model pruning mask update as each library does it.
- `training`: float, QAT and pruning training steps timed alternately in one process.
- `masks`: the cost of one mask update against the parameter count.
- `isolation`: a stage run in a child process, with that process's own peak RSS.
- `child`: that child process (`python -m benchmarks.scale.child`).
- `exported`: an exported file's figures in a stage's row (sizes, parity, conversion).
- `resnet`: ResNet50 QAT and pruning, a training step and an export, one child per stage.
- `conversions`: the deployment files, one child process per conversion.
- `deployment`: those conversions, then the files' LiteRT and onnxruntime latency.
- `goals`: the issue's goals, met or missed, from the rows.
- `protocol`: the runs (`run_tfopt`, `run_tfmot`).
- `render`: the BENCHMARKS.md section (prose in benchmarks/templates/scale.md).

TensorFlow, Keras and tfopt are imported only inside the functions that measure.
benchmarks/suite_scale.py, which the harness loads, re-exports the suite's four
members; this package exports nothing itself.
"""
