"""Every suite in benchmarks/ loads for rendering without TensorFlow, Keras or tfmot."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_suites_load_without_tensorflow():
    # A fresh interpreter: the pytest process may have TensorFlow loaded by other tests.
    # The suites' packages (benchmarks/distillation/, ...) import the heavy modules only
    # inside the functions that train, so that run.py can render in a light process.
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from benchmarks.harness import discovery\n"
        "names = discovery.discover_suites(discovery.BENCH_DIR)\n"
        "for name in names:\n"
        "    discovery.load_suite(name, discovery.BENCH_DIR)\n"
        "heavy = ('tensorflow', 'keras', 'tf_keras', 'tensorflow_model_optimization')\n"
        "print(','.join(names), sorted(k for k in heavy if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, heavy = out.stdout.split()
    names = names.split(",")
    # The known suites in their order, then the others alphabetically (more land over time).
    assert names[:4] == ["ptq", "pruning", "qat", "distillation"]
    assert names[4:] == sorted(names[4:]) and {"coverage", "sparse"} <= set(names[4:])
    assert heavy == "[]"
