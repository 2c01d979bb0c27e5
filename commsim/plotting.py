"""Figures from a sweep CSV: distortion vs channel parameter with confidence bands, the train/test
mismatch heat map, and grids of example reconstructions. The data behind each figure is written
beside it (``curves.csv``, ``mismatch_*.csv``), so nothing lives only in a picture.

The CSV is checked before anything is computed; a bad one raises ``ValueError`` (or
``FileNotFoundError``) with a one-line message. Every output is written whole or not at all, and
only after all of them have been computed.

Curves. A separated scheme gives one curve per codec, and so does a learned codec whose every point
was tested at its training eps (``sweep --train-eps same``). Any other learned codec (an AWGN
sweep, a mismatch grid) gives one curve per training eps, "CODEC (trained at eps 0.1)"; a mismatch
grid also gets its heat map. Points without a distortion (see the ``note`` column) are listed in the returned
``notes``; a codec with none left is named in the legend as not drawn.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from scipy import stats  # noqa: E402

from commsim.channels.loading import get_channel  # noqa: E402
from commsim.core import cache  # noqa: E402
from commsim.core.files import file_sha256  # noqa: E402
from commsim.codecs import make_codec  # noqa: E402
from commsim.data import load_dataset  # noqa: E402
from commsim.core.files import atomic_write, writable_folder  # noqa: E402
from commsim.core.images import save_grid  # noqa: E402
from commsim.core.metrics import CONFIDENCE, bce_per_pixel_from_probs, l2_per_image  # noqa: E402
from commsim.fec.ideal import normal_approximation_bler  # noqa: E402
from commsim.pipeline import Pipeline  # noqa: E402
from commsim.sweep import KEY_COLUMNS  # noqa: E402

METRIC_LABELS = {
    "l2_per_image": "l2_per_image: squared error summed over pixels, per image",
    "bce_per_pixel": "bce_per_pixel: cross-entropy per pixel (nats)",
}
PARAM_LABELS = {"eps": "channel eps (crossover / erasure probability)", "ebno_db": "Eb/N0 (dB)", "snr_db": "SNR (dB)"}
PARAM_SHORT = {"eps": ("eps", ""), "ebno_db": ("Eb/N0", " dB"), "snr_db": ("SNR", " dB")}
CURVE_COLUMNS = ["curve", "codec", "channel", "bits", "dataset", "train_eps", "value", "mean", "low", "high", "seeds"]
TEXT_COLUMNS = ["codec", "channel", "param", "dataset", "metric", "fixed_params", "checkpoint", "checkpoint_sha256", "note"]
BAND_LABEL = f"shading: {CONFIDENCE:.0%} CI of the mean (test images and seeds)"

Output = tuple[Path, Callable[[Path], object]]
"""A file to write and the function that writes it (atomically) at that path."""


def param_text(param: str, value: float) -> str:
    """``"eps 0.1"``, ``"Eb/N0 2 dB"``: a channel parameter value for a label."""
    name, unit = PARAM_SHORT.get(param, (param, ""))
    return f"{name} {value:g}{unit}"


def read_results(path: str | Path) -> pd.DataFrame:
    """A sweep CSV, checked: the key and headline-metric columns are there, one metric and one swept
    parameter, names filled in, numbers where numbers belong. ``ValueError`` (one line) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist; run `commsim sweep` first")
    try:
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable CSV ({str(exc).splitlines()[0][:80]})") from None
    hint = "is it a `commsim sweep` CSV?"
    missing = [c for c in KEY_COLUMNS + ["metric"] if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}; {hint}")
    if frame.empty:
        raise ValueError(f"{path} has no result rows")
    for column in ("codec", "channel", "param", "dataset", "metric"):
        empty = frame[column].isna() | (frame[column].str.strip() == "")
        if empty.any():
            raise ValueError(f"{path} line {empty.idxmax() + 2} has no {column}; {hint}")
    for column, what in (("metric", "metrics"), ("param", "swept parameters")):
        if frame[column].nunique() > 1:
            raise ValueError(f"{path} mixes {what} ({', '.join(sorted(frame[column].unique()))}); plot one sweep at a time")
    metric = frame["metric"].iloc[0]
    missing = [c for c in (metric, f"{metric}_low", f"{metric}_high") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}; {hint}")
    numbers = {c: True for c in ("value", "bits", "seed")}
    numbers.update({c: False for c in ("train_eps", metric, f"{metric}_low", f"{metric}_high", f"{metric}_count") if c in frame})
    for column, required in numbers.items():
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = ~np.isfinite(converted) if required else converted.isna() & frame[column].notna()
        if bad.any():
            line = bad.idxmax()
            raise ValueError(f"{path} line {line + 2}: column {column} holds {frame[column][line]!r}, not a number; {hint}")
        frame[column] = converted
    return frame


def seed_band(mean, low, high, count=None) -> tuple[float, float, float]:
    """Mean over seeds of one point and its ``CONFIDENCE`` interval.

    Every seed evaluates the *same* N test images with fresh encoder and channel noise, so a
    per-image distortion is ``d_is = f_i + e_is``: an image effect shared by the seeds and a noise
    term drawn anew per seed. The mean over S seeds, ``M``, then has variance
    ``Var f / N + Var e / (N S)``, which lies between ``SE^2 / S`` and ``SE^2``, where
    ``SE^2 = (Var f + Var e) / N`` is a seed's squared standard error (recovered from its interval,
    ``[low, high]`` of ``count`` images). Dividing by sqrt(S), as if the seeds had drawn new images,
    is too narrow whenever the images vary more than the noise.

    The seed-to-seed variance ``B`` of the per-seed means estimates ``Var e / N``, so
    ``mean SE^2 - B (S - 1) / S`` estimates ``Var M``; it is clipped to the bounds above and turned
    into a Student-t interval with ``count - 1`` degrees of freedom. With one seed this is that
    seed's own interval. Returns ``(mean, low, high)``; the bounds are NaN when no seed has one.
    """
    mean, low, high = (np.asarray(a, dtype=np.float64) for a in (mean, low, high))
    count = np.full(mean.shape, np.nan) if count is None else np.asarray(count, dtype=np.float64)
    seeds, centre = mean.size, float(mean.mean())
    quantile = 0.5 + CONFIDENCE / 2
    df = np.where(count > 1, count - 1, np.inf)  # no count: normal quantile
    se2 = float(np.mean(((high - low) / 2 / stats.t.ppf(quantile, df)) ** 2))
    variance = se2
    if seeds > 1:
        between = float(mean.var(ddof=1))
        variance = float(np.clip(se2 - between * (seeds - 1) / seeds, se2 / seeds, se2))
    half = float(stats.t.ppf(quantile, df.min())) * np.sqrt(variance)
    return centre, centre - half, centre + half


def curve_names(frame: pd.DataFrame) -> pd.Series:
    """The legend label of each row's curve (see the module docstring)."""
    several = [k for k in ("channel", "bits", "dataset") if frame[k].nunique() > 1]
    matched_param = frame["param"].iloc[0] == "eps"
    names = pd.Series("", index=frame.index, dtype=object)
    formats = {"channel": " / {}", "bits": ", {:g} bits", "dataset": ", {}"}
    for key, group in frame.groupby(["codec", *several], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        name = key[0] + "".join(formats[k].format(v) for k, v in zip(several, key[1:]))
        names[group.index] = name
        learned = group[group["train_eps"].notna()]
        if not learned.empty and not (matched_param and np.isclose(learned["train_eps"], learned["value"]).all()):
            names[learned.index] = [f"{name} (trained at eps {t:g})" for t in learned["train_eps"]]
    return names


def _note(row: pd.Series) -> str:
    note = row.get("note")
    note = "no note" if pd.isna(note) or not str(note).strip() else " ".join(str(note).split())
    return note if len(note) <= 160 else note[:157] + "..."


def distortion_curves(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """``(curves, notes, undrawn)``: one row per (curve, test value) with the mean over seeds and its
    band (:func:`seed_band`); a note for each curve with rows that have no distortion; the labels
    of the curves left with no point at all."""
    metric, param = frame["metric"].iloc[0], frame["param"].iloc[0]
    count = f"{metric}_count"
    frame = frame.assign(curve=curve_names(frame))
    rows, notes, undrawn = [], [], []
    for label, group in frame.groupby("curve", sort=False):
        has = group[metric].notna()
        if not has.all():
            first = group[~has].sort_values(["value", "seed"]).iloc[0]
            where = f"first at {param_text(param, first['value'])}: {_note(first)}"
            if has.any():
                notes.append(f"{label}: {(~has).sum()} of {len(group)} rows have no distortion and are left out ({where})")
            else:
                notes.append(f"{label}: not drawn, none of its {len(group)} rows has a distortion ({where})")
                undrawn.append(label)
        for value, points in group[has].groupby("value"):
            mean, low, high = seed_band(points[metric], points[f"{metric}_low"], points[f"{metric}_high"],
                                        points[count] if count in points else None)
            first = points.iloc[0]
            rows.append({"curve": label, "codec": first["codec"], "channel": first["channel"], "bits": first["bits"],
                         "dataset": first["dataset"], "train_eps": first["train_eps"], "value": value, "mean": mean,
                         "low": low, "high": high, "seeds": len(points)})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS), notes, undrawn


def zero_information_floor(dataset: str, metric: str) -> float | None:
    """Distortion of the training-mean image on the test split (embedded data sets only)."""
    try:
        source = load_dataset(dataset)
    except (ValueError, TypeError, FileNotFoundError):
        return None
    x, _ = source.tensors("test")
    mean = source.mean_image().expand_as(x)
    return float((l2_per_image(x, mean) if metric == "l2_per_image" else bce_per_pixel_from_probs(x, mean)).mean())


def figure_writer(fig) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with atomic_write(path) as fh:
            fig.savefig(fh, format=path.suffix[1:], dpi=150, bbox_inches="tight")
    return write


def csv_writer(table: pd.DataFrame, index: bool) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with atomic_write(path, "w") as fh:
            table.to_csv(fh, index=index)
    return write


def is_ber_csv(path: str | Path) -> bool:
    """Whether ``path`` is a ``commsim ber`` CSV (its header has ``bler`` and ``code``)."""
    try:
        with open(path, newline="", errors="replace") as fh:
            header = fh.readline().strip().split(",")
    except OSError:
        return False
    return "bler" in header and "code" in header


BER_NUMBERS = ["value", "k", "n", "frames", "ber", "ber_low", "ber_high", "bler", "bler_low", "bler_high"]
NORMAL_APPROXIMATION_CHANNELS = ("awgn", "bsc", "bec")


def read_ber_results(path: str | Path) -> pd.DataFrame:
    """A ``commsim ber`` CSV, checked: its columns, one channel and swept parameter, numbers where
    numbers belong. ``ValueError`` (one line) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist; run `commsim ber` first")
    try:
        frame = pd.read_csv(path, dtype={"code": str, "code_name": str, "channel": str, "param": str, "fixed_params": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable CSV ({str(exc).splitlines()[0][:80]})") from None
    missing = [c for c in ["code", "channel", "param"] + BER_NUMBERS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}; is it a `commsim ber` CSV?")
    if frame.empty:
        raise ValueError(f"{path} has no result rows")
    for column in ("channel", "param"):
        if frame[column].nunique() > 1:
            raise ValueError(f"{path} mixes {column}s ({', '.join(sorted(frame[column].astype(str).unique()))}); "
                             "plot one at a time")
    for column in BER_NUMBERS:
        converted = pd.to_numeric(frame[column], errors="coerce")
        if converted.isna().any():
            line = converted.isna().idxmax()
            raise ValueError(f"{path} line {line + 2}: column {column} holds {frame[column][line]!r}, not a number")
        frame[column] = converted
    return frame


def _fixed(text) -> dict[str, float]:
    if not isinstance(text, str) or not text.strip():
        return {}
    return {k: float(v) for k, _, v in (item.partition("=") for item in text.split(";")) if v}


def normal_approximation_table(frame: pd.DataFrame, points: int = 60) -> pd.DataFrame:
    """The normal approximation's BLER of every ``(n, k)`` in a BER frame over the swept range (AWGN
    Eb/N0 or Es/N0, BSC/BEC eps); empty for other channels."""
    channel, param = frame["channel"].iloc[0], frame["param"].iloc[0]
    if channel not in NORMAL_APPROXIMATION_CHANNELS or param not in ("ebno_db", "snr_db", "eps"):
        return pd.DataFrame(columns=["n", "k", "value", "bler"])
    low, high = float(frame["value"].min()), float(frame["value"].max())
    grid = np.linspace(low, high, points) if high > low else np.array([low])
    rows = []
    for (n, k), group in frame.groupby(["n", "k"]):
        fixed = _fixed(group["fixed_params"].iloc[0]) if "fixed_params" in group else {}
        fixed.pop(param, None)
        for value in grid:
            params = {**fixed, param: float(value)}
            if channel == "awgn" and param == "ebno_db":
                params["rate"] = k / n
            if channel == "awgn" and param == "snr_db":
                params.pop("rate", None)
            rows.append({"n": int(n), "k": int(k), "value": float(value),
                         "bler": normal_approximation_bler(int(n), int(k), channel, **params)})
    return pd.DataFrame(rows)


def ber_figure(frame: pd.DataFrame, approximation: pd.DataFrame):
    """BLER (left) and BER (right) against the swept parameter, 95 % Clopper-Pearson error bars,
    and the normal approximation's BLER of each ``(n, k)`` dashed."""
    param, channel = frame["param"].iloc[0], frame["channel"].iloc[0]
    fig, (ax_bler, ax_ber) = plt.subplots(1, 2, figsize=(11, 4.5))
    for code, c in frame.groupby("code", sort=False):
        c = c.sort_values("value")
        for ax, rate in ((ax_bler, "bler"), (ax_ber, "ber")):
            shown = c[c[rate] > 0]
            err = np.vstack([shown[rate] - shown[f"{rate}_low"], shown[f"{rate}_high"] - shown[rate]])
            ax.errorbar(shown["value"], shown[rate], yerr=err, marker="o", capsize=2, label=code)
    observed = frame.loc[frame["bler"] > 0, "bler_low"]
    floor = 0.1 * float(observed.min()) if len(observed) and observed.min() > 0 else 1e-7
    for (n, k), a in approximation.groupby(["n", "k"]):
        a = a[a["bler"] >= floor]
        ax_bler.plot(a["value"], a["bler"], linestyle="--", color="grey", label=f"normal approximation ({n}, {k})")
    for ax, what in ((ax_bler, "block error rate"), (ax_ber, "bit error rate (information bits)")):
        ax.set_yscale("log")
        ax.set_xlabel(PARAM_LABELS.get(param, param))
        ax.set_ylabel(what)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"channel {channel}; bars: {CONFIDENCE:.0%} Clopper-Pearson intervals; empty points (no error) not drawn",
                 fontsize=9)
    return fig


def plot_ber(path: str | Path, out: str | Path | None = None) -> dict:
    """Write the BER/BLER figure of a ``commsim ber`` CSV (PNG + PDF) and the normal approximation's
    numbers behind its dashed curves (``ber_normal_approximation.csv``) into ``out`` (default: beside
    the CSV)."""
    frame = read_ber_results(path)
    out = writable_folder(Path(out) if out else Path(path).parent)
    approximation = normal_approximation_table(frame)
    notes = [] if not approximation.empty else [f"no normal approximation for channel {frame['channel'].iloc[0]}"]
    fig = ber_figure(frame, approximation)
    param = frame["param"].iloc[0]
    outputs = [(out / "ber_normal_approximation.csv", csv_writer(approximation, index=False))]
    outputs += [(out / f"bler_vs_{param}.{suffix}", figure_writer(fig)) for suffix in ("png", "pdf")]
    try:
        for target, write in outputs:
            write(target)
    finally:
        plt.close(fig)
    return {"files": [target for target, _ in outputs], "notes": notes, "approximation": approximation}


def plot_results(path: str | Path, out: str | Path | None = None, reconstructions: bool = True,
                 channels: tuple[str, ...] = ()) -> dict:
    """Write the figures for a sweep CSV into ``out`` (default: beside the CSV). Returns the curves
    (``pandas.DataFrame``), the zero-information floor, the written files and the notes (codecs or
    points not drawn, reconstruction rows skipped, and why). A ``commsim ber`` CSV gets its BER/BLER
    figure instead (:func:`plot_ber`). ``channels``: user channel modules (``file.py:NAME``) the
    reconstructions may load; no other module named in the CSV is ever imported."""
    if is_ber_csv(path):
        return plot_ber(path, out)
    frame = read_results(path)
    if len(frame) > SLOW_ROWS:
        print(f"plotting {len(frame):,} rows of {path} (about {len(frame) / 1000:.0f} s) ...", file=sys.stderr, flush=True)
    curves, notes, undrawn = distortion_curves(frame)
    if curves.empty:
        raise ValueError(f"nothing to plot: no row of {path} has a distortion; {notes[0]}")
    out = writable_folder(Path(out) if out else Path(path).parent)
    metric, param = frame["metric"].iloc[0], frame["param"].iloc[0]
    datasets = frame["dataset"].unique()
    floor = zero_information_floor(datasets[0], metric) if len(datasets) == 1 else None
    figures, outputs = [], [(out / "curves.csv", csv_writer(curves, index=False))]
    try:
        fig = distortion_figure(frame, curves, undrawn, floor)
        figures.append(fig)
        outputs += [(out / f"distortion_vs_{param}.{suffix}", figure_writer(fig)) for suffix in ("png", "pdf")]
        for stem, grid in mismatch_grids(frame):
            fig = mismatch_figure(grid, stem, metric, param)
            figures.append(fig)
            outputs += [(out / f"mismatch_{stem}.csv", csv_writer(grid, index=True)),
                        (out / f"mismatch_{stem}.png", figure_writer(fig))]
        if reconstructions:
            grids, recon_notes = reconstruction_grids(frame, channels=tuple(channels))
            notes += recon_notes
            outputs += [(out / f"recon_{stem}.png", lambda p, rows=rows, labels=labels: save_grid(rows, p, labels=labels))
                        for stem, rows, labels in grids]
        for target, write in outputs:
            write(target)
    finally:
        for fig in figures:
            plt.close(fig)
    return {"curves": curves, "floor": floor, "files": [target for target, _ in outputs], "notes": notes}


def distortion_figure(frame: pd.DataFrame, curves: pd.DataFrame, undrawn: list[str], floor: float | None):
    metric, param = frame["metric"].iloc[0], frame["param"].iloc[0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax.set_prop_cycle(plt.cycler(linestyle=["-", "--", ":", "-."]) * plt.cycler(color=colors))
    for label, c in curves.groupby("curve", sort=False):
        c = c.sort_values("value")
        (line,) = ax.plot(c["value"], c["mean"], marker="o", label=label)
        ax.fill_between(c["value"], c["low"], c["high"], color=line.get_color(), alpha=0.25, linewidth=0)
    for label in undrawn:
        ax.plot([], [], " ", label=f"{label}: not drawn, no distortion (see notes)")
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label="zero information (training-mean image)")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="grey", alpha=0.25, label=BAND_LABEL))
    ax.set_xlabel(PARAM_LABELS.get(param, param))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    bits = ", ".join(f"{b:g}" for b in sorted(frame["bits"].unique()))
    ax.set_title(f"{', '.join(frame['dataset'].unique())}, {bits} bits, channel {', '.join(frame['channel'].unique())}")
    ax.grid(alpha=0.3)
    if len(handles) > 6:
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    else:
        ax.legend(handles=handles, fontsize=8)
    return fig


def file_stem(frame: pd.DataFrame, codec: str, channel: str, bits: float, dataset: str) -> str:
    """``necst``, or ``necst_awgn_b8`` when the CSV holds several channels / bit counts / data sets."""
    parts = [codec] + [str(v) if k != "bits" else f"b{v:g}" for k, v in
                       (("channel", channel), ("bits", bits), ("dataset", dataset)) if frame[k].nunique() > 1]
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", "_".join(parts))


def mismatch_grids(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Mean distortion, training eps (rows) x test value (columns), for every learned codec trained
    at several eps of which some were tested away from their training eps."""
    metric, param, grids = frame["metric"].iloc[0], frame["param"].iloc[0], []
    learned = frame.dropna(subset=["train_eps"])
    for (codec, channel, bits, dataset), group in learned.groupby(["codec", "channel", "bits", "dataset"], sort=False):
        off_diagonal = param != "eps" or not np.isclose(group["train_eps"], group["value"]).all()
        if group["train_eps"].nunique() < 2 or not off_diagonal:
            continue
        grid = group.groupby(["train_eps", "value"])[metric].mean().unstack()
        grids.append((file_stem(frame, codec, channel, bits, dataset), grid))
    return grids


SLOW_ROWS = 1000
"""Above this many rows ``plot`` says that it is working (about a second per thousand rows)."""
MAX_ANNOTATED_CELLS = 400
"""A mismatch heat map writes each cell's value up to this many cells (the numbers are in its CSV)."""
MAX_TICKS = 25
"""Most labelled ticks per axis of a heat map."""


def mismatch_figure(grid: pd.DataFrame, stem: str, metric: str, param: str):
    """The heat map of a mismatch grid; its size is bounded (at most 16 x 12 inches, values written in
    the cells of grids up to :data:`MAX_ANNOTATED_CELLS`), however large the sweep."""
    rows, cols = grid.shape
    fig, ax = plt.subplots(figsize=(min(16.0, 2 + 0.7 * cols), min(12.0, 1.5 + 0.5 * rows)))
    image = ax.imshow(grid.values, cmap="viridis", aspect="auto")
    xs, ys = (np.unique(np.linspace(0, k - 1, min(k, MAX_TICKS)).round().astype(int)) for k in (cols, rows))
    ax.set_xticks(xs, [f"{grid.columns[j]:g}" for j in xs])
    ax.set_yticks(ys, [f"{grid.index[i]:g}" for i in ys])
    if rows * cols <= MAX_ANNOTATED_CELLS:
        for i in range(rows):
            for j in range(cols):
                value = grid.values[i, j]
                ax.text(j, i, "-" if np.isnan(value) else f"{value:.3g}", ha="center", va="center", color="w", fontsize=7)
    ax.set_xlabel(f"test {PARAM_LABELS.get(param, param)}")
    ax.set_ylabel("training eps")
    ax.set_title(f"{stem}: {metric}, trained at one eps, tested at all")
    fig.colorbar(image, ax=ax)
    return fig


def parse_fixed_params(text) -> dict[str, float]:
    """The ``fixed_params`` cell, ``"p_gb=0.02;eps_bad=0.4"`` -> ``{"p_gb": 0.02, "eps_bad": 0.4}``."""
    if pd.isna(text) or not str(text).strip():
        return {}
    params = {}
    for item in str(text).split(";"):
        name, sep, value = item.partition("=")
        try:
            params[name.strip()] = float(value) if sep else float("nan")
        except ValueError:
            params[name.strip()] = float("nan")
        if not np.isfinite(params[name.strip()]):
            raise ValueError(f"malformed fixed_params {text!r}")
    return params


def pick_row(rows: pd.DataFrame, value: float, param: str) -> pd.Series:
    """Of the rows at one test value, the one to show: tested at its training eps if there is one,
    else the nearest training eps (eps channels) or the smallest; the first seed (a codec that was not
    trained: the first seed)."""
    train = rows["train_eps"]
    if train.isna().all():
        return rows.sort_values("seed").iloc[0]
    if param == "eps":
        distance = (train - value).abs()
        rows = rows[np.isclose(distance, distance.min())]
    else:
        rows = rows[train == train.min()]
    return rows.sort_values(["train_eps", "seed"]).iloc[0]


def plot_channel(channel_name: str, allowed: tuple[str, ...] = ()):
    """The channel block of a CSV's ``channel`` cell for the reconstructions: a registered name, or a
    user module path only when the user named that same path (``allowed``, ``plot --channel``). A
    CSV is data: reading one never imports the module a cell names."""
    if ":" in channel_name and channel_name not in allowed:
        raise ValueError(f"channel {channel_name} is a user module, which a CSV never loads by itself; "
                         f"pass --channel {channel_name} to load it")
    return get_channel(channel_name)


def reconstruction_grids(frame: pd.DataFrame, count: int = 8, levels: int = 3,
                         channels: tuple[str, ...] = ()) -> tuple[list[tuple[str, list, list[str]]], list[str]]:
    """Per codec built from a stored file (a learned codec's checkpoint; and channel, bits, data set): the first ``count`` test images, then their
    reconstructions at up to ``levels`` test values spread over the sweep, each through the
    checkpoint named in that point's ``checkpoint`` column (in the cache's ``checkpoints`` folder).
    Returns ``([(stem, rows, labels)], notes)``; a row whose checkpoint is gone, changed since the
    sweep (``checkpoint_sha256``) or unreadable is left out with a note, and so is a user channel
    module that ``channels`` does not name (:func:`plot_channel`)."""
    metric, param = frame["metric"].iloc[0], frame["param"].iloc[0]
    folder = cache.folder("checkpoints")
    stored = frame["checkpoint"].fillna("").astype(str).str.strip() != "" if "checkpoint" in frame else False
    built_from_files = frame[stored & frame[metric].notna()]
    grids, notes, models = [], [], {}
    for (codec, channel_name, bits, dataset), group in built_from_files.groupby(["codec", "channel", "bits", "dataset"], sort=False):
        stem = file_stem(frame, codec, channel_name, bits, dataset)
        target = f"recon_{stem}.png"
        try:
            source = load_dataset(dataset)
            channel = plot_channel(channel_name, channels)
        except (ValueError, OSError, ImportError) as exc:
            notes.append(f"{target} not written: cannot load data set {dataset} / channel {channel_name} ({str(exc).splitlines()[0]})")
            continue
        x = source.tensors("test")[0][:count]
        values = sorted(group["value"].unique())
        picks = [values[i] for i in np.linspace(0, len(values) - 1, min(levels, len(values))).round().astype(int)]
        rows, labels = [x], ["originals"]
        for value in picks:
            row = pick_row(group[np.isclose(group["value"], value)], value, param)
            label = param_text(param, value)
            if pd.notna(row["train_eps"]) and not (param == "eps" and np.isclose(row["train_eps"], value)):
                label += f", trained at eps {row['train_eps']:g}"
            name = row.get("checkpoint")
            path = folder / str(name)
            if pd.isna(name) or not str(name).strip() or Path(str(name)).name != str(name):
                notes.append(f"{target}: left out {label}: the CSV names no checkpoint file for it")
                continue
            if not path.is_file():
                notes.append(f"{target}: left out {label}: its checkpoint {name} is not in {folder} any more")
                continue
            sha = row.get("checkpoint_sha256")
            if isinstance(sha, str) and sha.strip() and file_sha256(path) != sha.strip():
                notes.append(f"{target}: left out {label}: checkpoint {name} changed since the sweep (sha256 differs)")
                continue
            try:
                if path not in models:
                    models[path] = make_codec(codec, source, int(bits), channel_name, checkpoint=path).codec
                params = {**parse_fixed_params(row.get("fixed_params")), param: float(value)}
                with torch.no_grad():
                    x_hat, _, _ = Pipeline(source, models[path], channel)(
                        x, torch.Generator().manual_seed(int(row["seed"])), **params)
            except (ValueError, TypeError) as exc:  # CheckpointError is a ValueError
                notes.append(f"{target}: left out {label}: {str(exc).splitlines()[0]}")
                continue
            rows.append(x_hat)
            labels.append(label)
        if len(rows) > 1:
            grids.append((stem, rows, labels))
        else:
            notes.append(f"{target} not written: no reconstruction row left")
    return grids, notes
