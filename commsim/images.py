"""Image grids written as PNG (atomically: a temporary file renamed into place)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from commsim.fileio import atomic_path


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


def save_grid(rows: list[torch.Tensor], path: str | Path, scale: int = 3) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"image file must end in .png, got {path.name}")
    image = Image.fromarray(grid_array(rows))
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
