"""Every image op of jaxvision.data.augment (FroFA's ops) on hand-made grids vs an independent image-space definition.

References: `frofa_numpy_reference` (big_vision's uint8 semantics, written in numpy),
PIL (ImageOps / resize: the reference implementations the AutoAugment ops copy), and
exact closed forms (np.rot90, slicing).  `quantize=True` must reproduce the uint8
pipeline exactly; the float mode (used on features) must agree with the same
definition without the uint8 casts.
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from PIL import ImageOps
import pytest

import augment_numpy_reference as ref
from jaxvision.data.augment import other as ops_other
from jaxvision.data.augment import pointwise as pw
from jaxvision.data.augment import spatial as sp


def _grid(h=6, w=7, c=3, seed=0):
  """A hand-made uint8 grid: a ramp, a checkerboard and random levels."""
  rng = np.random.default_rng(seed)
  ramp = np.linspace(0, 255, h * w).reshape(h, w)
  checker = (np.indices((h, w)).sum(0) % 2) * 200 + 20
  noise = rng.integers(0, 256, (h, w))
  planes = [ramp, checker, noise][:c] + [rng.integers(0, 256, (h, w)) for _ in range(c - 3)]
  return np.stack(planes, -1).astype(np.uint8)


def _run(fn, img, *args, scale=255.0, **kw):
  x = jnp.asarray(img, jnp.float32) * (scale / 255.0)
  return np.asarray(jax.jit(lambda x: fn(x, *args, scale=scale, **kw))(x)) * (255.0 / scale)


@pytest.mark.parametrize('factor', [0.0, 0.3, 1.0, 1.7])
@pytest.mark.parametrize('name', ['brightness', 'contrast', 'sharpness'])
def test_blend_ops_match_uint8_definition(name, factor):
  img = _grid()
  out = _run(getattr(pw, name), img, factor, quantize=True)
  if name == 'contrast':  # each channel is its own grey image
    expect = np.concatenate([ref.contrast(img[..., i:i + 1], factor) for i in range(3)], -1)
  else:
    expect = getattr(ref, name)(img, factor)
  np.testing.assert_allclose(out, expect, atol=1e-3)


def test_contrast_big_vision_quirk():
  img = _grid(16, 16, 1)
  out = _run(pw.contrast, img, 0.4, quantize=True, mean='big_vision')
  np.testing.assert_allclose(out, ref.contrast(img, 0.4, quirk=True), atol=1e-3)


def test_float_mode_is_the_definition_without_casts():
  img = _grid().astype(np.float32) / 255.0
  x = jnp.asarray(img)
  np.testing.assert_allclose(pw.brightness(x, 1.3), np.clip(1.3 * img, 0, 1), atol=1e-6)
  mean = img.mean(axis=(0, 1), keepdims=True)
  np.testing.assert_allclose(pw.contrast(x, 1.5), np.clip(mean + 1.5 * (img - mean), 0, 1),
                             atol=1e-6)
  np.testing.assert_allclose(pw.solarize(x, 100.5), np.where(img < 100.5 / 255, img, 1 - img),
                             atol=1e-7)


def test_per_channel_parameters_act_on_their_channel_only():
  img = _grid(c=3)
  factors = np.array([0.5, 1.0, 1.5], np.float32)
  out = _run(pw.brightness, img, jnp.asarray(factors), quantize=True)
  for i, f in enumerate(factors):
    np.testing.assert_allclose(out[..., i], ref.brightness(img[..., i], float(f)), atol=1e-3)
  with pytest.raises(ValueError, match='one per channel'):
    pw.brightness(jnp.zeros((4, 4, 3)), jnp.ones(2))
  # one parameter per element (element-wise FroFA) acts on its element only
  per_element = np.broadcast_to(factors, img.shape).copy()
  per_element[0, 0] = [1.0, 1.0, 1.0]
  out_e = _run(pw.brightness, img, jnp.asarray(per_element), quantize=True)
  np.testing.assert_allclose(out_e[1:], out[1:], atol=1e-3)
  np.testing.assert_allclose(out_e[0, 0], img[0, 0], atol=1e-3)


@pytest.mark.parametrize('bits', [0, 1, 4, 7, 8])
def test_posterize_matches_pil(bits):
  img = _grid()
  out = _run(pw.posterize, img, bits, scale=1.0)
  np.testing.assert_allclose(out, ref.posterize(img, bits), atol=1e-3)
  pil = np.stack([np.asarray(ImageOps.posterize(Image.fromarray(img[..., i]), bits))
                  for i in range(3)], -1) if bits > 0 else np.zeros_like(img)
  np.testing.assert_allclose(out, pil, atol=1e-3)


@pytest.mark.parametrize('threshold', [0, 77, 128, 256])
def test_solarize_and_invert_match_pil(threshold):
  img = _grid()
  out = _run(pw.solarize, img, threshold)
  np.testing.assert_allclose(out, ref.solarize(img, threshold), atol=1e-3)
  if threshold < 256:
    pil = np.asarray(ImageOps.solarize(Image.fromarray(img), threshold))
    np.testing.assert_allclose(out, pil, atol=1e-3)
  np.testing.assert_allclose(_run(pw.invert, img), ref.invert(img), atol=1e-3)
  np.testing.assert_allclose(_run(pw.invert, img), np.asarray(ImageOps.invert(
      Image.fromarray(img))), atol=1e-3)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_equalize_matches_pil(seed):
  rng = np.random.default_rng(seed)
  img = _grid(16, 16, 3, seed)
  img[..., 2] = rng.integers(40, 90, (16, 16))     # a narrow histogram
  img[:3, :, 1] = 255                              # a big last bin
  for scale in (1.0, 255.0):
    out = _run(pw.equalize, img, scale=scale)
    pil = np.asarray(ImageOps.equalize(Image.fromarray(img)))
    np.testing.assert_allclose(out, pil, atol=1e-3)


def test_equalize_of_a_constant_channel_is_identity():
  img = np.full((5, 5, 1), 77, np.uint8)
  np.testing.assert_allclose(_run(pw.equalize, img), img, atol=1e-3)


def test_autocontrast_matches_definition_and_pil():
  img = _grid(8, 8, 3)
  img[..., 0] = img[..., 0] // 3 + 40
  out = _run(pw.autocontrast, img, quantize=True)
  np.testing.assert_allclose(out, ref.autocontrast(img), atol=1e-3)
  pil = np.stack([np.asarray(ImageOps.autocontrast(Image.fromarray(img[..., i])))
                  for i in range(3)], -1)
  np.testing.assert_allclose(out, pil, atol=1.0 + 1e-3)  # PIL rounds its LUT


# ------------------------------------------------------------------ geometric ops


def _geo(fn, img, *args, fill=128.0):
  x = jnp.asarray(img, jnp.float32)
  return np.asarray(jax.jit(lambda x: fn(x, *args, fill=fill))(x))


@pytest.mark.parametrize('degrees', [-37.0, 12.5, 30.0, 133.0])
def test_rotate_matches_tfa_definition(degrees):
  img = _grid(7, 7)
  np.testing.assert_allclose(_geo(sp.rotate, img, degrees), ref.rotate(img, degrees, 128))


def test_rotate_by_quarter_turns_is_rot90():
  img = _grid(6, 6)
  np.testing.assert_allclose(_geo(sp.rotate, img, 90.0), np.rot90(img, 1))
  np.testing.assert_allclose(_geo(sp.rotate, img, 180.0), np.rot90(img, 2))
  np.testing.assert_allclose(_geo(sp.rotate, img, 0.0), img)


@pytest.mark.parametrize('pixels', [-3, 2, 9])
def test_translate_integer_pixels_is_a_shift(pixels):
  img = _grid(5, 6)
  out = _geo(sp.translate_x, img, float(pixels))
  expect = np.full_like(img, 128)
  w = img.shape[1]
  if pixels >= 0:
    expect[:, :max(w - pixels, 0)] = img[:, pixels:]
  else:
    expect[:, -pixels:] = img[:, :w + pixels]
  np.testing.assert_allclose(out, expect)
  out_y = _geo(sp.translate_y, img.transpose(1, 0, 2), float(pixels))
  np.testing.assert_allclose(out_y, expect.transpose(1, 0, 2))


@pytest.mark.parametrize('level', [-0.35, 0.25, 1.0])  # no float32 rounding ties
def test_shear_matches_definition(level):
  img = _grid(6, 6)
  np.testing.assert_allclose(_geo(sp.shear_x, img, level),
                             ref.affine_nearest(img, (1, level, 0), (0, 1, 0), 128))
  np.testing.assert_allclose(_geo(sp.shear_y, img, level),
                             ref.affine_nearest(img, (1, 0, 0), (level, 1, 0), 128))
  if level == 1.0:  # row y moves left by y pixels
    out = _geo(sp.shear_x, img, 1.0)
    for y in range(6):
      np.testing.assert_allclose(out[y, :6 - y], img[y, y:])


@pytest.mark.parametrize('cy,cx,pad', [(0, 0, 2), (3, 4, 1), (5, 6, 3), (2, 2, 0)])
def test_cutout_matches_big_vision(cy, cx, pad):
  img = _grid(6, 7)
  out = np.asarray(sp.cutout(jnp.asarray(img, jnp.float32), cy, cx, pad, fill=128.0))
  np.testing.assert_allclose(out, ref.cutout(img, cy, cx, pad, 128))


@pytest.mark.parametrize('box', [(0, 0, 4, 4), (2, 1, 5, 6), (1.5, 0.25, 3.5, 5.0)])
def test_crop_resize_matches_pil_bilinear(box):
  img = _grid(8, 8).astype(np.float32)
  y0, x0, ch, cw = box
  out = np.asarray(sp.crop_resize(jnp.asarray(img), y0, x0, ch, cw))
  for i in range(3):
    pil = Image.fromarray(img[..., i], mode='F').resize(
        (8, 8), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    np.testing.assert_allclose(out[..., i], np.asarray(pil), atol=1e-3)


def test_full_box_is_identity_and_patch_dropout_keeps_distinct_tokens():
  img = _grid(4, 5).astype(np.float32)
  np.testing.assert_allclose(sp.crop_resize(jnp.asarray(img), 0, 0, 4, 5), img, atol=1e-4)
  tokens = np.asarray(sp.patch_dropout(jnp.asarray(img), jax.random.key(3), 7))
  flat = img.reshape(20, 3)
  idx = [int(np.where((flat == t).all(-1))[0][0]) for t in tokens]
  assert len(set(idx)) == 7 and idx == sorted(idx)
  with pytest.raises(ValueError, match='patch dropout keeps'):
    sp.patch_dropout(jnp.asarray(img), jax.random.key(0), 0)


# ------------------------------------------------------------------------ jpeg, mixup


@pytest.mark.parametrize('quality', [10, 50, 75, 95])
def test_jpeg_matches_scipy_dct_definition(quality):
  img = _grid(13, 10).astype(np.float32)   # not a multiple of 8: edge padding
  out = np.asarray(ops_other.jpeg(jnp.asarray(img), quality, scale=255.0))
  np.testing.assert_allclose(out, ref.jpeg(img, quality), atol=2e-3)


def test_jpeg_is_close_to_libjpeg_through_pil():
  rng = np.random.default_rng(0)
  smooth = np.cumsum(np.cumsum(rng.normal(size=(16, 16)), 0), 1)
  img = np.clip((smooth - smooth.min()) / np.ptp(smooth) * 255, 0, 255).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(img).save(buf, format='JPEG', quality=60)
  pil = np.asarray(Image.open(buf)).astype(np.float32)
  out = np.asarray(ops_other.jpeg(jnp.asarray(img[..., None], jnp.float32), 60, scale=255.0,
                                  quantize=True))[..., 0]
  assert np.max(np.abs(out - pil)) <= 3.0      # libjpeg's integer DCT vs an exact DCT
  assert np.mean(np.abs(out - pil)) < 0.6


def test_mixup_mixes_neighbours_with_one_weight():
  x = jax.random.normal(jax.random.key(0), (6, 2, 2, 3))
  y = jax.nn.one_hot(jnp.arange(6) % 4, 4)
  mixup = jax.jit(ops_other.mixup, static_argnums=3, static_argnames='per_example')
  mx, my = mixup(jax.random.key(1), x, y, 0.4)
  p = float(my[0, 0])                       # label 0 of example 0 keeps weight p
  assert 0.5 <= p <= 1.0
  np.testing.assert_allclose(mx, p * x + (1 - p) * np.roll(x, 1, 0), atol=1e-6)
  np.testing.assert_allclose(my, p * y + (1 - p) * np.roll(y, 1, 0), atol=1e-6)
  mx, my = mixup(jax.random.key(1), x, y, 0.4, per_example=True)
  ps = np.asarray(my)[np.arange(6), np.arange(6) % 4]
  assert len(set(np.round(ps, 6))) > 1
  np.testing.assert_allclose(mx, ps[:, None, None, None] * x
                             + (1 - ps[:, None, None, None]) * np.roll(x, 1, 0), atol=1e-6)
