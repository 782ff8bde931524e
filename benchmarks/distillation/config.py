"""The distillation suite's settings: architectures, budgets, the grids chosen from, data."""

TITLE = "Distillation: small student from a larger teacher (tfopt only)"

TEACHER_ARCH = {"filters": (32, 64), "dense_units": 128}
# Two students of the common digits CNN, each compared with itself from scratch:
# "tiny" underfits (1/60 of the teacher), "small" can overfit the 1,150-1,438 training
# images (1/4 of the teacher: the regime of Hinton et al. 2015's MNIST result, where the
# soft targets act as a regularizer). TFOPT_BENCH_STUDENTS=tiny,small picks some.
STUDENTS = {
    "tiny": {"filters": (4, 8), "dense_units": 16},
    "small": {"filters": (16, 32), "dense_units": 64},
}
STUDENT_ARCH = STUDENTS["tiny"]  # the epoch-time run
EPOCHS = 100  # full mode; --quick uses common.QUICK_EPOCHS
TEMPERATURE = 2.0  # --quick, and the timing run
ALPHA = 0.5
GRID = [(t, a) for t in (1.0, 2.0, 4.0) for a in (0.5, 0.9, 1.0)]  # chosen on validation data
TEACHER_RECIPES = ("plain", "augmented")  # chosen on validation data
STUDENT_RECIPES = ("plain", "augmented")  # chosen on validation data, per arm
QUICK_STUDENT_RECIPE = "plain"  # --quick, both arms (fixed; plain led on validation)
SHIFT_PIXELS = 1
VALIDATION_FRACTION = 0.2
HARDER_PER_CLASS = 20
HARDER_VALIDATION_PER_CLASS = 40
HARDER_NOISE = 0.25
HARDER_EPOCH_FACTOR = 3
SPARSITY = 0.8
COMPRESSED_ARCH = {"filters": (16, 32), "dense_units": 64}  # the common digits CNN
