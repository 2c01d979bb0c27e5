"""Image grids written as PNG (atomically: a temporary file renamed into place), optionally with a
text label at the left of each row."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from commsim.core.files import atomic_write


def grid_array(rows: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Rows of images ``[n, C, H, W]`` in [0, 1] -> one uint8 ``[H', W', 3]`` array."""
    n = max(r.shape[0] for r in rows)
    c, h, w = rows[0].shape[1:]
    out = np.ones(((h + pad) * len(rows) + pad, (w + pad) * n + pad, 3), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row.detach().cpu().float().clamp(0, 1)):
            arr = img.permute(1, 2, 0).numpy()
            arr = np.repeat(arr, 3, axis=2) if c == 1 else arr
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            out[top : top + h, left : left + w] = arr
    return (out * 255).round().astype(np.uint8)


def label_rows(image: Image.Image, labels: list[str], row_height: int, pad: int) -> Image.Image:
    """``image`` with a white margin on the left holding ``labels[i]`` beside row ``i`` (row ``i``
    starts at ``pad + i * row_height`` pixels, padding included)."""
    font = ImageFont.load_default(size=max(10, min(16, row_height // 4)))
    width = max(font.getbbox(text)[2] for text in labels) + 2 * pad + 8
    canvas = Image.new("RGB", (image.width + width, image.height), "white")
    canvas.paste(image, (width, 0))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(labels):
        draw.text((pad + 4, pad + i * row_height + (row_height - pad) // 2), text, fill="black", font=font, anchor="lm")
    return canvas


def save_grid(rows: list[torch.Tensor], path: str | Path, scale: int = 3, labels: list[str] | None = None) -> Path:
    """Write the rows of images as one PNG (each image ``scale`` times enlarged); ``labels``, one per
    row, are written at the left of the rows."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"image file must end in .png, got {path.name}")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"{len(labels)} labels for {len(rows)} rows of images")
    pad = 2
    image = Image.fromarray(grid_array(rows, pad))
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    if labels is not None:
        image = label_rows(image, labels, (rows[0].shape[2] + pad) * scale, pad * scale)
    with atomic_write(path) as fh:
        image.save(fh, format="PNG")
    return path
