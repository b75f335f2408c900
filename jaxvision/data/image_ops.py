"""Per-example image preprocessing in numpy (runs inside grain workers).

Random ops take a `np.random.Generator` (grain's `random_map` hands each example its
own, seeded from the pipeline seed and the example's position), so a pipeline is
reproducible and resumable.  Images are HxWxC arrays.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def to_float(image: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
  """uint8 [0, 255] -> float32 in `value_range` (floats in [0, 1] are only rescaled)."""
  x = np.asarray(image, np.float32)
  if np.issubdtype(np.asarray(image).dtype, np.integer):
    x = x / 255.0
  lo, hi = value_range
  return x * (hi - lo) + lo


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bilinear resize of an HxWxC image to `size` (height, width), keeping the dtype."""
  image = np.asarray(image)
  h, w = size
  if image.shape[:2] == (h, w):
    return image
  channels = [Image.fromarray(np.ascontiguousarray(image[..., c]).astype(np.float32), mode='F')
              .resize((w, h), Image.BILINEAR) for c in range(image.shape[-1])]
  out = np.stack([np.asarray(c) for c in channels], axis=-1)
  if np.issubdtype(image.dtype, np.integer):
    out = np.clip(np.round(out), np.iinfo(image.dtype).min, np.iinfo(image.dtype).max)
  return out.astype(image.dtype)


def random_crop_with_pad(image: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
  """Zero-pads by `pad` pixels and crops back to the original size at a random offset."""
  if pad <= 0:
    return image
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  y, x = rng.integers(0, 2 * pad + 1, size=2)
  return padded[y:y + h, x:x + w]


def random_flip_lr(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  return image[:, ::-1] if rng.random() < 0.5 else image


def inception_crop(image: np.ndarray, rng: np.random.Generator, *,
                   area_range: tuple[float, float] = (0.05, 1.0),
                   aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
                   attempts: int = 10) -> np.ndarray:
  """Random crop of random area and aspect ratio (Szegedy et al. 2015), else the centre."""
  h, w = image.shape[:2]
  for _ in range(attempts):
    area = h * w * rng.uniform(*area_range)
    log_ratio = rng.uniform(math.log(aspect_range[0]), math.log(aspect_range[1]))
    ratio = math.exp(log_ratio)
    cw = int(round(math.sqrt(area * ratio)))
    ch = int(round(math.sqrt(area / ratio)))
    if 0 < cw <= w and 0 < ch <= h:
      y = int(rng.integers(0, h - ch + 1))
      x = int(rng.integers(0, w - cw + 1))
      return image[y:y + ch, x:x + cw]
  return central_crop(image, min(h, w))


def central_crop(image: np.ndarray, size: int) -> np.ndarray:
  h, w = image.shape[:2]
  size = min(size, h, w)
  y, x = (h - size) // 2, (w - size) // 2
  return image[y:y + size, x:x + size]


def resize_small(image: np.ndarray, smaller_side: int) -> np.ndarray:
  """Resizes so the smaller side equals `smaller_side`, keeping the aspect ratio."""
  h, w = image.shape[:2]
  scale = smaller_side / min(h, w)
  return resize(image, (max(1, round(h * scale)), max(1, round(w * scale))))
