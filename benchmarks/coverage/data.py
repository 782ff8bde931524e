"""The data of the coverage suite: digits images, and two tasks generated here, offline.

- Images: `tfopt.datasets.load_digits` resized (32x32x3 for keras.applications,
  16x16x1 for the ViT-style classifier), times the model's `input_scale`.
- Text: token sequences classified by a keyword rule (`text_task`).
- Tagging: token sequences tagged by bracket state (`tagger_task`).

Both generated tasks are seeded and have a single right answer per sample, so a
model can reach 100% accuracy; numpy only (no TensorFlow).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from benchmarks.coverage import models

TEXT_TRAIN, TEXT_TEST = 2000, 500
TAGGER_TRAIN, TAGGER_TEST = 2000, 500
QUICK_SAMPLES = (600, 200)  # (train, test) of the generated tasks with --quick
TRAIN_SEED, TEST_SEED = 1, 2
# Text: keyword tokens of class c are 1 + 3c .. 3 + 3c; 10.. are filler; 0 pads.
KEYWORDS_PER_CLASS = 3
FIRST_FILLER = 1 + KEYWORDS_PER_CLASS * models.TEXT_CLASSES
# Tagger: tags 0 outside brackets, 1 inside, 2 a bracket token itself.
OPEN, CLOSE = 1, 2
OPEN_P, CLOSE_P = 0.15, 0.25


@dataclasses.dataclass(frozen=True)
class Task:
    """Train and held-out test arrays of one model's task."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def task_for(spec, quick: bool) -> Task:
    """The data `spec` trains and is measured on."""
    if spec.kind in ("application", "vit"):
        from tfopt.datasets import load_digits

        if spec.kind == "application":
            digits = load_digits(image_size=models.IMAGE_SIZE, channels=3)
        else:
            digits = load_digits(image_size=models.VIT_IMAGE_SIZE, channels=1)
        scale = np.float32(spec.input_scale)
        return Task(digits.x_train * scale, digits.y_train, digits.x_test * scale, digits.y_test)
    make = text_task if spec.kind == "text" else tagger_task
    n_train, n_test = QUICK_SAMPLES if quick else _SIZES[spec.kind]
    x_train, y_train = make(n_train, TRAIN_SEED)
    x_test, y_test = make(n_test, TEST_SEED)
    return Task(x_train, y_train, x_test, y_test)


def text_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences labelled by the keyword class that occurs most often.

    Each sequence has a length in [8, `TEXT_LENGTH`] (then 0-padded). Its label c
    has 2 to 4 keyword tokens (drawn from c's 3 keywords); each other class fewer
    than c; the rest of the sequence is filler, positions shuffled. So the label is
    a bag-of-words rule with one right answer.

    Returns:
        (tokens of shape (n, TEXT_LENGTH) int32, labels of shape (n,) int32).
    """
    rng = np.random.default_rng(seed)
    x = np.zeros((n, models.TEXT_LENGTH), np.int32)
    y = rng.integers(0, models.TEXT_CLASSES, n).astype(np.int32)
    for i, label in enumerate(y):
        counts = {c: 0 for c in range(models.TEXT_CLASSES)}
        counts[label] = int(rng.integers(2, 5))
        for c in counts:
            if c != label:
                counts[c] = int(rng.integers(0, counts[label]))
        words = [
            1 + KEYWORDS_PER_CLASS * c + int(rng.integers(0, KEYWORDS_PER_CLASS))
            for c, k in counts.items()
            for _ in range(k)
        ]
        length = max(int(rng.integers(8, models.TEXT_LENGTH + 1)), len(words) + 2)
        filler = rng.integers(FIRST_FILLER, models.TEXT_VOCAB, length - len(words)).tolist()
        sequence = np.array(words + filler, np.int32)
        rng.shuffle(sequence)
        x[i, :length] = sequence
    return x, y


def tagger_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences tagged by bracket state: 0 outside, 1 inside, 2 a bracket.

    Outside a bracket an OPEN token comes with probability 0.15, inside a CLOSE
    with 0.25; other tokens are filler (3..). A token's tag depends on the tokens
    before it only, so a left-to-right LSTM can tag every one right.

    Returns:
        (tokens of shape (n, TAGGER_LENGTH) int32, tags of shape (n, TAGGER_LENGTH) int32).
    """
    rng = np.random.default_rng(seed)
    x = np.zeros((n, models.TAGGER_LENGTH), np.int32)
    y = np.zeros((n, models.TAGGER_LENGTH), np.int32)
    for i in range(n):
        inside = False
        for t in range(models.TAGGER_LENGTH):
            draw = rng.random()
            if not inside and draw < OPEN_P:
                x[i, t], y[i, t], inside = OPEN, 2, True
            elif inside and draw < CLOSE_P:
                x[i, t], y[i, t], inside = CLOSE, 2, False
            else:
                x[i, t] = int(rng.integers(3, models.TAGGER_VOCAB))
                y[i, t] = 1 if inside else 0
    return x, y


_SIZES = {"text": (TEXT_TRAIN, TEXT_TEST), "tagger": (TAGGER_TRAIN, TAGGER_TEST)}
