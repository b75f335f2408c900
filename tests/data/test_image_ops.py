"""jaxvision.data.image_ops: per-example numpy image preprocessing."""

import numpy as np
from PIL import Image

from jaxvision.data import image_ops


def test_to_float_rescales_integers_and_floats():
  img = np.array([[[0], [255]]], np.uint8)
  np.testing.assert_allclose(image_ops.to_float(img, (-1.0, 1.0)), [[[-1.0], [1.0]]])
  np.testing.assert_allclose(image_ops.to_float(np.array([[[0.25]]]), (0.0, 2.0)), [[[0.5]]])
  assert image_ops.to_float(img).dtype == np.float32


def test_resize_is_pil_bilinear_per_channel_and_keeps_dtype():
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
  out = image_ops.resize(img, (5, 7))
  assert out.shape == (5, 7, 3) and out.dtype == np.uint8
  ref = np.asarray(Image.fromarray(img[..., 1].astype(np.float32), mode='F')
                   .resize((7, 5), Image.BILINEAR))
  np.testing.assert_array_equal(out[..., 1], np.clip(np.round(ref), 0, 255))
  assert image_ops.resize(img, (10, 14)) is img
  const = np.full((9, 9, 2), 0.5, np.float32)   # a constant image stays constant
  np.testing.assert_allclose(image_ops.resize(const, (4, 13)), 0.5, atol=1e-6)


def test_random_crop_with_pad_is_a_shifted_window_of_the_padded_image():
  img = np.arange(1, 5 * 6 + 1, dtype=np.float32).reshape(5, 6, 1)
  for seed in range(5):
    out = image_ops.random_crop_with_pad(img, 2, np.random.default_rng(seed))
    assert out.shape == img.shape
    padded = np.pad(img, ((2, 2), (2, 2), (0, 0)))
    assert any(np.array_equal(out, padded[y:y + 5, x:x + 6])
               for y in range(5) for x in range(5))
  assert image_ops.random_crop_with_pad(img, 0, np.random.default_rng(0)) is img


def test_flip_crops_and_resize_small():
  img = np.arange(4 * 8 * 1).reshape(4, 8, 1)
  flips = {image_ops.random_flip_lr(img, np.random.default_rng(s))[0, 0, 0] for s in range(20)}
  assert flips == {0, 7}
  np.testing.assert_array_equal(image_ops.central_crop(img, 2), img[1:3, 3:5])
  assert image_ops.resize_small(np.zeros((20, 40, 3), np.uint8), 10).shape == (10, 20, 3)
  rng = np.random.default_rng(0)
  for _ in range(20):
    crop = image_ops.inception_crop(img, rng, area_range=(0.2, 0.5))
    h, w = crop.shape[:2]
    assert 0.2 * 32 - 4 <= h * w <= 0.5 * 32 + 4 or (h, w) == (4, 4)
  # No crop of the asked area fits: the centre square.
  np.testing.assert_array_equal(
      image_ops.inception_crop(img, rng, area_range=(2.0, 3.0)), img[:, 2:6])
