"""Independent numpy versions of the image ops, written from their image-space definitions.

uint8 semantics of google-research/big_vision `pp/autoaugment.py` (tf.cast to uint8
truncates), tensorflow-addons' projective transform (nearest neighbour, std::round),
and JPEG's 8x8 DCT quantisation (ITU-T T.81, IJG quality scaling) via scipy's DCT.
Written with loops and plain numpy, never calling jaxvision.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft


def u8(v):
  return np.clip(v, 0, 255).astype(np.uint8)


def blend(img1, img2, factor):
  if factor == 0.0:
    return img1.astype(np.uint8)
  if factor == 1.0:
    return img2.astype(np.uint8)
  temp = img1.astype(np.float32) + factor * (img2.astype(np.float32) - img1.astype(np.float32))
  if 0.0 < factor < 1.0:
    return temp.astype(np.uint8)
  return np.clip(temp, 0.0, 255.0).astype(np.uint8)


def brightness(img, factor):
  return blend(np.zeros_like(img), img, factor)


def contrast(img, factor, quirk=False):
  """Grey image (H, W, 1): blend with the mean (or big_vision's H*W/256)."""
  mean = img.size / 256.0 if quirk else img.astype(np.float64).mean()
  degenerate = np.full(img.shape, np.clip(mean, 0, 255)).astype(np.uint8)
  return blend(degenerate, img, factor)


def sharpness(img, factor):
  h, w, c = img.shape
  kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0
  result = img.copy()
  for ch in range(c):
    for y in range(1, h - 1):
      for x in range(1, w - 1):
        v = float(np.sum(img[y - 1:y + 2, x - 1:x + 2, ch].astype(np.float32) * kernel))
        result[y, x, ch] = np.uint8(min(max(v, 0.0), 255.0))
  return blend(result, img, factor)


def posterize(img, bits):
  shift = 8 - bits
  return ((img.astype(np.uint8) >> shift) << shift).astype(np.uint8)


def solarize(img, threshold):
  return np.where(img < threshold, img, 255 - img).astype(np.uint8)


def invert(img):
  return (255 - img).astype(np.uint8)


def autocontrast(img):
  out = img.copy()
  for ch in range(img.shape[-1]):
    lo, hi = float(img[..., ch].min()), float(img[..., ch].max())
    if hi > lo:
      s = 255.0 / (hi - lo)
      out[..., ch] = np.clip(img[..., ch] * s - lo * s, 0, 255).astype(np.uint8)
  return out


def affine_nearest(img, a, b, fill):
  """tfa transform: out[y, x] = img[round(b.[x,y,1]), round(a.[x,y,1])] or fill."""
  h, w, _ = img.shape
  out = np.empty_like(img)
  def rnd(v):  # std::round
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)
  for y in range(h):
    for x in range(w):
      sx = rnd(a[0] * x + a[1] * y + a[2])
      sy = rnd(b[0] * x + b[1] * y + b[2])
      out[y, x] = img[sy, sx] if (0 <= sx < w and 0 <= sy < h) else fill
  return out


def rotate(img, degrees, fill):
  h, w, _ = img.shape
  r = degrees * math.pi / 180.0
  c, s = math.cos(r), math.sin(r)
  x_off = ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2.0
  y_off = ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2.0
  return affine_nearest(img, (c, -s, x_off), (s, c, y_off), fill)


def cutout(img, cy, cx, pad, fill):
  """big_vision cutout with a given centre: pads computed as in the TF code."""
  h, w, _ = img.shape
  lower = max(0, cy - pad)
  upper = max(0, h - cy - pad)
  left = max(0, cx - pad)
  right = max(0, w - cx - pad)
  out = img.copy()
  out[lower:h - upper, left:w - right] = fill
  return out


def quality_table(quality):
  base = np.array([
      [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
      [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
      [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
      [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]])
  q = min(max(int(quality), 1), 100)
  s = 5000 // q if q < 50 else 200 - 2 * q
  return np.clip((base * s + 50) // 100, 1, 255).astype(np.float64)


def jpeg(img, quality):
  """Float levels (H, W, C) in [0, 255] -> JPEG-quantised float levels (no rounding)."""
  h, w, c = img.shape
  ph, pw = -h % 8, -w % 8
  v = np.pad(img.astype(np.float64), ((0, ph), (0, pw), (0, 0)), mode='edge') - 128.0
  table = quality_table(quality)
  out = np.empty_like(v)
  for ch in range(c):
    for by in range(0, h + ph, 8):
      for bx in range(0, w + pw, 8):
        block = v[by:by + 8, bx:bx + 8, ch]
        coef = scipy.fft.dctn(block, norm='ortho')
        q = coef / table
        q = np.sign(q) * np.floor(np.abs(q) + 0.5)
        out[by:by + 8, bx:bx + 8, ch] = scipy.fft.idctn(q * table, norm='ortho')
  return np.clip(out[:h, :w] + 128.0, 0.0, 255.0)
