"""Every notebook in notebooks/ runs top to bottom, quietly, and shows what it says it shows.

Each notebook is executed as a reader would run it: in a fresh kernel whose
environment does not carry the test run's TF_CPP_MIN_LOG_LEVEL (the notebook's
first cell sets what it needs), in a scratch directory. A cell that raises fails
the test with the cell's traceback; so does anything written to stderr (TensorFlow
start-up lines, warnings), and a missing figure, file or line of output that the
notebook's text promises.
"""

import base64
import os
import pathlib
import re

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))

# What each executed notebook must show: files it writes (relative to its directory),
# PNG figures it displays, and lines its cells' output must hold (regular expressions,
# one line each).
EXPECTED = {
    "quickstart": {
        "files": ["digits_float32.tflite", "digits_int8.tflite"],
        "figures": 0,
        "text": [
            r"digits_float32\.tflite: tflite float32, ",
            r"digits_int8\.tflite: tflite int8, .* top-1 agreement",
            r"^FULLY_CONNECTED +1 +int8,int8,int32 -> int8$",  # the census: dense in int8
        ],
    },
    "pruning": {
        "files": ["pruned_dense.tflite", "pruned_sparse.tflite"],
        "figures": 2,  # the schedule, the sparsity per layer
        "text": [
            r"^total +9872 +7897 +80\.0%$",  # 80% of the prunable weights are zero
            r"leave_dense=\['conv1'\]",  # the m:n refusal says what to do
            r"^conv2 +kernel .* 50\.0% +2:4 100%$",
            r"^conv1 +kernel .* 2:4 n/a$",
            r"^sparse / dense file size: 0\.\d\d$",
        ],
    },
    "qat": {
        "files": ["digits_qat.tflite", "digits_qat_int8_io.tflite", "digits_qat.onnx"],
        "figures": 1,  # the per-layer quantization error
        "text": [
            r"^digits_qat\.tflite: tflite int8-qat, ",
            r"^digits_qat\.onnx: onnx qdq-u8s8, ",
            r"int8_io\.tflite: fully integer\? yes \(int8 input, int8 output\)$",
            r"qat\.tflite: fully integer\? no — float input/output \(float32\); compute ops all",
            r"^output step .* of outputs within one step; top-1 agreement",
        ],
    },
    "optimize": {
        "files": [
            "recipe.yaml",
            "optimized/optimized.tflite",
            "optimized/optimized.onnx",
            "optimized/report.md",
            "optimized/accuracy-vs-size.png",
        ],
        "figures": 2,  # accuracy against size, against latency
        "text": [
            r"^stage 'qat': preserve_sparsity=True",
            r"^optimized\.tflite +tflite +int8-qat +",
            r"^optimized\.onnx +onnx +qdq-u8s8 +",
        ],
    },
    "bring_your_own_model": {
        "files": ["mobilenet_int8.tflite", "mobilenet_float32.tflite"],
        "figures": 1,  # the sensitivity ranking
        "text": [
            r"^quantization sensitivity: baseline accuracy 0\.\d+ on 359 samples",
            r"^left in float: \[.*'conv_preds', 'predictions'\]: accuracy",
            r"^mobilenet_int8\.tflite: tflite int8-qat, ",
            r"^DEPTHWISE_CONV_2D +\d+ +int8,int8,int32 -> int8$",
            r"^SOFTMAX +1 +float32 -> float32$",  # the head left in float
        ],
    },
}


def _cell_outputs(notebook):
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                yield index, output


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return output.get("data", {}).get("text/plain", "")


def _run(path, directory):
    notebook = nbformat.read(path, as_version=4)
    # The reader's environment, not the test run's: the first cell sets the log level.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
    }
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": directory}}
    )
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised:\n{err}", pytrace=False)
    return notebook


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_quietly_and_shows_what_it_says(path, tmp_path):
    expected = EXPECTED[path.stem]  # a new notebook needs an entry above
    notebook = _run(path, tmp_path)  # notebooks write their files next to themselves

    outputs = list(_cell_outputs(notebook))
    errors = [o for _, o in outputs if o.get("output_type") == "error"]
    assert errors == []
    stderr = [
        f"cell {i}: {o['text']}" for i, o in outputs if o.get("output_type") == "stream"
        and o.get("name") == "stderr"
    ]  # fmt: skip
    assert stderr == [], "the notebook wrote to stderr:\n" + "\n".join(stderr)

    figures = [
        o["data"]["image/png"]
        for _, o in outputs
        if o.get("output_type") in ("execute_result", "display_data")
        and "image/png" in o.get("data", {})
    ]
    assert len(figures) == expected["figures"]
    for figure in figures:  # a real PNG, not an empty placeholder
        png = base64.b64decode(figure)
        assert png.startswith(b"\x89PNG") and len(png) > 5000

    text = "\n".join(_text(o) for _, o in outputs)
    missing = [line for line in expected["text"] if not re.search(line, text, re.M)]
    assert missing == [], f"not in the output: {missing}"
    absent = [name for name in expected["files"] if not (tmp_path / name).is_file()]
    assert absent == [], f"the notebook wrote no {absent}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert path.stem in EXPECTED, f"add what {path.name} shows to EXPECTED"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    # Committed without outputs: a run's figures and timings do not belong in git.
    assert [c.outputs for c in code] == [[]] * len(code)
    assert [c.execution_count for c in code] == [None] * len(code)
    # Nothing hidden from the reader: no collapsed or tagged-away cells.
    for cell in notebook.cells:
        assert not cell.metadata.get("jupyter"), cell.metadata
        assert not cell.metadata.get("tags"), cell.metadata
    # A title first, and the log level set before TensorFlow is imported.
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# ")
    first = code[0].source
    assert first.index('"TF_CPP_MIN_LOG_LEVEL", "3"') < first.index("import tfopt")
    assert first.index("import tfopt") < first.index("import keras")
    # Each step explained: no more than two code cells in a row.
    kinds = "".join("c" if c.cell_type == "code" else "m" for c in notebook.cells)
    assert "ccc" not in kinds


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ is empty"
    assert {p.stem for p in NOTEBOOKS} == set(EXPECTED)
