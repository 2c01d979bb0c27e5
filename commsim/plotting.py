"""Figures from a sweep CSV: distortion vs channel parameter with CI bands, the train/test mismatch
heat map, and grids of example reconstructions. The data behind each curve is written beside the
figure (``curves.csv``), so nothing lives only in a picture."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from commsim.sweep import KEY_COLUMNS  # noqa: E402

METRIC_LABELS = {
    "l2_per_image": "l2_per_image: squared error summed over pixels, per image",
    "bce_per_pixel": "bce_per_pixel: cross-entropy per pixel (nats)",
}
PARAM_LABELS = {"eps": "channel eps (crossover / erasure probability)", "ebno_db": "Eb/N0 (dB)"}


def read_results(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist; run `commsim sweep` first")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable CSV ({str(exc).splitlines()[0][:80]})") from None
    required = KEY_COLUMNS + ["metric"]
    missing = [c for c in required if c not in frame.columns]
    if not missing and frame.empty:
        raise ValueError(f"{path} has no result rows")
    if not missing:
        metric = frame["metric"].iloc[0]
        missing = [c for c in (metric, f"{metric}_low", f"{metric}_high") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}; is it a `commsim sweep` CSV?")
    return frame


def matched_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """One curve per codec: points tested at their training eps (or separated codecs), averaged over
    seeds. The band pools the seeds: mean of the per-seed intervals' half-widths / sqrt(seeds)."""
    metric = frame["metric"].iloc[0]
    frame = frame.dropna(subset=[metric])  # points where a scheme could not run (see the note column)
    same = frame["train_eps"].isna() | np.isclose(frame["train_eps"].fillna(-1), frame["value"])
    several_channels = frame["channel"].nunique() > 1
    rows = []
    for (codec, channel, value), group in frame[same].groupby(["codec", "channel", "value"]):
        half = ((group[f"{metric}_high"] - group[f"{metric}_low"]) / 2).mean() / math.sqrt(len(group))
        mean = group[metric].mean()
        label = f"{codec} / {channel}" if several_channels else codec
        rows.append({"curve": label, "codec": codec, "channel": channel, "value": value, "mean": mean,
                     "low": mean - half, "high": mean + half, "seeds": len(group)})
    return pd.DataFrame(rows)


def zero_information_floor(dataset: str, metric: str) -> float | None:
    """Distortion of the training-mean image on the test split (embedded data sets only)."""
    from commsim.data import load_dataset
    from commsim.metrics import bce_per_pixel_from_probs, l2_per_image

    try:
        source = load_dataset(dataset)
    except (ValueError, TypeError, FileNotFoundError):
        return None
    x, _ = source.tensors("test")
    mean = source.mean_image().expand_as(x)
    return float((l2_per_image(x, mean) if metric == "l2_per_image" else bce_per_pixel_from_probs(x, mean)).mean())


def plot_results(path: str | Path, out: str | Path | None = None, reconstructions: bool = True) -> dict:
    """Write the figures for a sweep CSV into ``out`` (default: beside the CSV). Returns the curves
    (``pandas.DataFrame``) and the written files."""
    frame = read_results(path)
    out = Path(out) if out else Path(path).parent
    out.mkdir(parents=True, exist_ok=True)
    metric, param = frame["metric"].iloc[0], frame["param"].iloc[0]
    curves = matched_curves(frame)
    curves.to_csv(out / "curves.csv", index=False)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, c in curves.groupby("curve"):
        c = c.sort_values("value")
        (line,) = ax.plot(c["value"], c["mean"], marker="o", label=label)
        ax.fill_between(c["value"], c["low"], c["high"], color=line.get_color(), alpha=0.25)
    floor = zero_information_floor(frame["dataset"].iloc[0], metric)
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label="zero information (training-mean image)")
    ax.set_xlabel(PARAM_LABELS.get(param, param))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(f"{frame['dataset'].iloc[0]}, {int(frame['bits'].iloc[0])} bits, channel {', '.join(frame['channel'].unique())}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    files = []
    for suffix in ("png", "pdf"):
        target = out / f"distortion_vs_{param}.{suffix}"
        fig.savefig(target, dpi=150, bbox_inches="tight")
        files.append(target)
    plt.close(fig)
    files += plot_mismatch(frame, out)
    if reconstructions:
        files += plot_reconstructions(frame, out)
    return {"curves": curves, "floor": floor, "files": files}


def plot_mismatch(frame: pd.DataFrame, out: Path) -> list[Path]:
    """Heat map of distortion, training eps (rows) x test value (columns), for codecs trained at
    several eps."""
    metric, files = frame["metric"].iloc[0], []
    for (codec, channel), group in frame.dropna(subset=["train_eps"]).groupby(["codec", "channel"]):
        grid = group.groupby(["train_eps", "value"])[metric].mean().unstack()
        if grid.shape[0] < 2 or grid.notna().sum(axis=1).max() < 2:
            continue  # no model tested away from its training eps
        codec = codec if frame["channel"].nunique() == 1 else f"{codec}_{channel.replace(':', '_').replace('/', '_')}"
        grid.to_csv(out / f"mismatch_{codec}.csv")
        fig, ax = plt.subplots(figsize=(1 + 0.7 * grid.shape[1], 1 + 0.5 * grid.shape[0]))
        image = ax.imshow(grid.values, cmap="viridis", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                ax.text(j, i, f"{grid.values[i, j]:.3g}", ha="center", va="center", color="w", fontsize=7)
        ax.set_xlabel("test value")
        ax.set_ylabel("training eps")
        ax.set_title(f"{codec}: {metric}, trained at one eps, tested at all")
        fig.colorbar(image, ax=ax)
        target = out / f"mismatch_{codec}.png"
        fig.savefig(target, dpi=150, bbox_inches="tight")
        plt.close(fig)
        files.append(target)
    return files


def plot_reconstructions(frame: pd.DataFrame, out: Path, count: int = 8, levels: int = 3) -> list[Path]:
    """Per learned codec: originals, then reconstructions at a few test values (from cached checkpoints)."""
    import torch

    from commsim.channels.loading import resolve_channel
    from commsim.codecs.zoo import cached_checkpoints, codec_from_checkpoint
    from commsim.data import load_dataset
    from commsim.images import save_grid
    from commsim.pipeline import Pipeline

    files = []
    first = frame.iloc[0]
    try:
        source = load_dataset(first["dataset"])
        channel = resolve_channel(first["channel"])
    except (ValueError, FileNotFoundError, TypeError):
        return files
    x = source.tensors("test")[0][:count]
    for codec, group in frame.dropna(subset=["train_eps"]).groupby("codec"):
        values = sorted(group["value"].unique())
        picks = [values[i] for i in np.linspace(0, len(values) - 1, min(levels, len(values))).round().astype(int)]
        rows = [x]
        for value in picks:
            paths = cached_checkpoints(codec, first["dataset"], int(first["bits"]), float(value))
            if not paths:
                break
            model = codec_from_checkpoint(paths[0], codec, first["dataset"], int(first["bits"]), source, device="cpu")
            with torch.no_grad():
                x_hat, _, _ = Pipeline(source, model, channel).transmit(x, torch.Generator().manual_seed(0), **{first["param"]: float(value)})
            rows.append(x_hat)
        if len(rows) > 1:
            files.append(save_grid(rows, out / f"recon_{codec}.png"))
    return files
