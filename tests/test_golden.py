"""Golden files: seeded end-to-end numbers of a few codecs, compared with tests/expected/golden_pipeline.json.

Each case builds a codec on a 900-image slice of the embedded MNIST (train 600 / val 150 / test 150),
evaluates it with ``Pipeline(source, codec, BSC).evaluate("test", seed=EVAL_SEED, limit=LIMIT, eps=...)``
and compares the metric means (and, for the separated schemes, the channel code the rate selection
chose) with the stored ones. The other tests check properties (bounds, monotonicity, round trips);
these catch a silent change of a number that no property pins: a default, a code construction, a
random stream, a decoder's arithmetic.

``pytest tests/test_golden.py --regenerate`` rewrites the stored cases from the current code instead
of comparing (each such test then reports itself skipped, naming the file). A regeneration must be
justified in the commit message (see the file's ``why_values_may_change``).
"""
from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

import commsim
from commsim import CODECS, Pipeline, TrainConfig, get_channel, load_dataset, train_codec
from commsim.data.sources import ImageSource, split_in_order

GOLDEN = Path(__file__).parent / "expected" / "golden_pipeline.json"
GOLDEN_NAME = "tests/expected/golden_pipeline.json"
REGENERATE = "pytest tests/test_golden.py --regenerate"

RTOL = 1e-6
"""Relative tolerance of the float values (l2_per_image, mse_per_pixel, psnr_db, the learned case's
validation l2).

Measured (torch 2.13.0 CPU): OMP_NUM_THREADS=1 and =2 give bitwise the same separated cases; the learned
case (its training sums batches of 50 in another order on 2 threads) differs by 1.2e-9 (validation l2)
to 4.2e-9 (test l2_per_image) relative. Float32 sums taken in another order (other threads, another
vectorisation of the same torch version) are bounded by about log2(784) * 6e-8 ~ 6e-7 relative for a
per-image l2 (a float32 sum of 784 squares); 1e-6 absorbs that with room. A real drift is three orders
larger: one of the 100 test images decoded differently (a decoding failure more or less, another channel
code, another noise draw) moves l2_per_image by ~1e-3 relative or more (l2 ~ 20 per image); another
evaluation seed moves the learned case by ~1e-4, another training seed by ~4e-2. The counts (images,
bits, the channel code, its k) and the count-based rates (ber, failure_rate: ratios of integers) are
compared exactly."""

EXACT = ("ber", "failure_rate")
"""Metrics that are ratios of counts: compared exactly (a changed count is a drift, never rounding)."""

EPS = 0.05
"""BSC crossover probability of the separated cases (the learned case trains and runs at its own)."""
LIMIT = 100
"""Test images per evaluation."""
EVAL_SEED = 1

SEPARATED = {
    # name: build options (bits: channel bits per image). One case per channel-code family on pca
    # (cheap to fit), and jpeg (a Pillow codec: its bits come from libjpeg) on LDPC.
    "pca+rep": {"bits": 128},
    "pca+ldpc": {"bits": 128},
    "pca+polar": {"bits": 128},
    "pca+nrldpc": {"bits": 128},
    "pca+conv": {"bits": 128},
    "pca+ideal": {"bits": 128},
    "jpeg+ldpc": {"bits": 768},  # jpeg needs ~200-400 bits an image at its lowest quality: k = 386
}
SEPARATED_BUILD = {"val_images": 50, "screen_frames": 16, "seed": 0}
"""Rate selection on 50 validation images (16 screening frames per code) instead of 400 (64): ~0.2 s a scheme."""

LEARNED = {
    # name: codec bits, initialisation seed, training config, validation images, eval eps. 12 steps of 50 images (~0.15 s): the
    # path of a training (init, estimator, optimizer, recipe, random streams), not a good code (its test
    # l2 ~64 is still above the mean image's ~53); another training seed moves it by ~4 %.
    "necst": {"bits": 100, "init_seed": 0, "train": {"eps": 0.1, "epochs": 1, "batch_size": 50, "seed": 0, "recipe": "onecycle"}, "val_limit": 50, "eps": 0.1},
}
CASES = [*SEPARATED, *LEARNED]

WHY = [
    "A golden value records what the code computed when the file was made, not a truth: it may change "
    "legitimately when a default changes on purpose (a recipe's learning rate, a rate-selection rule, "
    "val_images), when a channel-code construction changes (a parity-check matrix, a frozen set, a "
    "trellis, a decoder's iterations or list size), when a random stream changes (how seeds are split "
    "into generators, the order of draws), when the embedded data set changes, or when torch / numpy / "
    "Pillow change their arithmetic or encoders (a version bump).",
    "Any other change is a regression. Regenerate only after finding which of these caused the drift, "
    f"with `{REGENERATE}`, and say in the commit message which change moved which numbers and why.",
]


@pytest.fixture(scope="module")
def tiny() -> ImageSource:
    full = load_dataset("mnist")
    return ImageSource("mnist-tiny", full.images[:900], full.labels[:900], split_in_order(900, 600, 150, 150))


@pytest.fixture(scope="module")
def regenerate(request) -> bool:
    return bool(request.config.getoption("--regenerate"))


def case_config(name: str) -> dict:
    """What determines a case's numbers besides the code: stored with it, so a changed case reads as such."""
    common = {"data": "mnist[:900] split 600/150/150", "eval": {"split": "test", "seed": EVAL_SEED, "limit": LIMIT}}
    if name in SEPARATED:
        return {**common, "channel": "bsc", "eps": EPS, **SEPARATED[name], **SEPARATED_BUILD}
    return {**common, "channel": "bsc", **LEARNED[name]}


def run_case(name: str, source: ImageSource) -> dict:
    """Build (and, for a learned codec, train) the case's codec and evaluate it: the record to compare/store."""
    config = case_config(name)
    if name in SEPARATED:
        codec = CODECS.get(name).build(source, bits=config["bits"], channel="bsc", params={"eps": EPS}, **SEPARATED_BUILD)
        extra = {"channel_code": codec.accounting()["code"], "k": codec.k}
    else:
        codec = CODECS.get(name).codec_class(config["bits"], source.image_shape, binary=source.binary, seed=config["init_seed"])
        result = train_codec(codec, source, TrainConfig(**config["train"]), progress=False, val_limit=config["val_limit"])
        extra = {"train_val_l2": result.val_value}
    ev = Pipeline(source, codec, get_channel("bsc")).evaluate("test", seed=EVAL_SEED, limit=LIMIT, eps=config["eps"])
    return {"config": config, **extra, "images": ev.images, "bits": ev.bits,
            "metrics": {metric: est.mean for metric, est in ev.metrics.items()}}


def header() -> dict:
    return {
        "description": "Seeded end-to-end numbers of tests/test_golden.py (one entry per case), compared there: "
                       "counts, channel codes and count ratios exactly, float means within rtol.",
        "made_with": {"command": f"OMP_NUM_THREADS=1 {REGENERATE}", "torch": torch.__version__,
                      "numpy": np.__version__, "commsim": commsim.__version__, "python": platform.python_version()},
        "rtol": RTOL,
        "why_values_may_change": WHY,
    }


def drifts(name: str, golden: dict, now: dict) -> list[str]:
    """One line per value of ``now`` that differs from ``golden`` beyond the tolerance."""
    out = []
    for key in ("config", "channel_code", "k", "images", "bits"):
        if golden.get(key) != now.get(key):
            out.append(f"{name}: {key} drifted: golden {golden.get(key)!r}, now {now.get(key)!r}")
    floats = [("train_val_l2", golden.get("train_val_l2"), now.get("train_val_l2"))] if "train_val_l2" in now else []
    metrics = set(golden["metrics"]) | set(now["metrics"])
    floats += [(m, golden["metrics"].get(m), now["metrics"].get(m)) for m in sorted(metrics)]
    for metric, old, new in floats:
        if old is None or new is None:
            out.append(f"{name}: {metric} drifted: golden {old!r}, now {new!r}")
        elif metric in EXACT and old != new:
            out.append(f"{name}: {metric} drifted: golden {old!r}, now {new!r} (a ratio of counts: compared exactly)")
        elif metric not in EXACT and not math.isclose(old, new, rel_tol=RTOL):
            rel = abs(new - old) / max(abs(old), 1e-300)
            out.append(f"{name}: {metric} drifted: golden {old!r}, now {new!r} (relative {rel:.2g} > rtol {RTOL:g})")
    return out


def load_golden() -> dict:
    with open(GOLDEN) as f:
        return json.load(f)


def store(name: str, record: dict) -> None:
    """Write ``record`` as case ``name`` (keeping the other current cases, dropping ones no longer in CASES)."""
    cases = load_golden()["cases"] if GOLDEN.exists() else {}
    cases = {n: cases[n] for n in CASES if n in cases}
    cases[name] = record
    with open(GOLDEN, "w") as f:
        json.dump({**header(), "cases": {n: cases[n] for n in CASES if n in cases}}, f, indent=2)
        f.write("\n")


@pytest.mark.parametrize("name", CASES)
def test_golden(tiny, regenerate, name):
    now = run_case(name, tiny)
    if regenerate:
        store(name, now)
        pytest.skip(f"regenerated golden case {name!r} in {GOLDEN_NAME}: justify the change in the commit message")
    stored = load_golden()
    golden = stored["cases"].get(name)
    assert golden is not None, f"{GOLDEN_NAME} has no case {name!r}: run `{REGENERATE}`"
    lines = drifts(name, golden, now)
    if lines:
        made = stored["made_with"]
        pytest.fail("\n".join(lines + [
            f"(golden made with torch {made['torch']}, numpy {made['numpy']}; this run: torch {torch.__version__}, numpy {np.__version__})",
            f"If the change is intended, run `{REGENERATE}` and say why in the commit message "
            f"(see why_values_may_change in {GOLDEN_NAME})."]), pytrace=False)


def test_golden_file_has_exactly_the_cases_and_says_how_it_was_made():
    golden = load_golden()
    assert list(golden["cases"]) == CASES, f"{GOLDEN_NAME} holds {list(golden['cases'])}, the tests run {CASES}: run `{REGENERATE}`"
    assert golden["made_with"]["command"].endswith(REGENERATE) and golden["why_values_may_change"]
