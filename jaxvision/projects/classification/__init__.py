"""ViT image classification (Dosovitskiy et al. 2021; big_vision's recipes).

The foundation's first project and the default experiment: a ViT trained on real
images through the one binary.  Its checkpoints serve later projects (FroFA) as frozen
backbones.  See README.md in this folder for results and commands.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxvision import config as config_lib
from jaxvision.data import pipeline
from jaxvision.nn import vit
from jaxvision.nn import vit_checkpoint
from jaxvision.projects.classification import data
from jaxvision.projects.classification.losses import loss_fn  # pylint: disable=unused-import
from jaxvision.projects.classification.evaluators import eval_data  # pylint: disable=unused-import
from jaxvision.projects.classification.evaluators import predict_fns  # pylint: disable=unused-import

kind = 'trained'   # the contract of jaxvision/projects/__init__.py
__all__ = ['kind', 'default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
           'make_dataset', 'predict_fns', 'eval_data', 'load_pretrained']


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'model': {
          'variant': 'Ti/16',          # Ti|S|M|B|L|H / patch size
          'num_classes': config_lib.REQUIRED,
          'width': 0, 'depth': 0, 'mlp_dim': 0, 'num_heads': 0,  # >0 overrides the variant
          'pool_type': 'gap',          # gap | tok | map | 0
          'posemb': 'learn',           # learn | sincos2d
          'rep_size': 0,               # >0: pre-logits Dense+tanh of this size
          'dropout': 0.0,
          'head_zeroinit': True,
          'dtype_mm': 'float32',
      },
      'input': {
          'dataset': config_lib.REQUIRED,   # 'digits' or a tfds name
          'data_dir': '',
          'image_key': 'image', 'label_key': 'label',
          'train_split': 'train',
          'classes': '',   # digits only: e.g. '0-4' keeps those classes, labels 0..K-1
          'batch_size': config_lib.REQUIRED,   # global
          'image_size': config_lib.REQUIRED,   # (height, width)
          'channels': 3,
          'value_range': (-1.0, 1.0),
          'augment': {'inception_crop': False, 'inception_area': (0.05, 1.0),
                      'crop_pad': 0, 'flip': False},
          'eval_central_crop': False,
          'num_workers': 0,
      },
      'loss': {'kind': 'softmax_xent', 'label_smoothing': 0.0},
      # Initialise from pretrained weights (fresh runs only): a big_vision .npz or a
      # jaxvision workdir; `dont_load` regexes keep freshly initialised params.
      'init': {'npz': '', 'workdir': '', 'dont_load': ()},
  })


def make_model(model_cfg) -> vit.ViT:
  overrides = {k: int(model_cfg[k]) for k in ('width', 'depth', 'mlp_dim', 'num_heads')
               if model_cfg[k]}
  return vit.make_vit(
      model_cfg.variant, num_classes=model_cfg.num_classes, pool_type=model_cfg.pool_type,
      posemb=model_cfg.posemb, rep_size=model_cfg.rep_size or False, dropout=model_cfg.dropout,
      head_zeroinit=model_cfg.head_zeroinit, dtype_mm=model_cfg.dtype_mm, **overrides)


def init_params(model, rng, batch):
  return model.init({'params': rng}, batch['image'], train=False)['params']


def batch_spec(config, split: str):
  del split
  h, w = config.input.image_size
  b = config.input.batch_size
  return {'image': jax.ShapeDtypeStruct((b, h, w, config.input.channels), jnp.float32),
          'label': jax.ShapeDtypeStruct((b,), jnp.int32)}


def make_dataset(config, split, *, seed, process_index, process_count):
  train_fn, _ = data.preprocess_fns(config.input)
  source = data.make_source(config.input, config.input.train_split if split == 'train' else split)
  return pipeline.train_dataset(
      source, global_batch_size=config.input.batch_size, seed=seed, preprocess=train_fn,
      num_workers=config.input.num_workers, process_index=process_index,
      process_count=process_count)


def load_pretrained(params, config):
  """Loads `init.npz` (big_vision layout) or `init.workdir` (a jaxvision run) into params.

  `params` is the run's fresh, sharded params (or `jax.ShapeDtypeStruct`s with
  shardings); every loaded leaf is placed with its target's sharding as it is read
  (`vit_checkpoint.merge_params`), so the sharded tree is never gathered on a host.
  `init.workdir` reads the source run's params on the host to convert their layout
  (new head, resampled posemb); a run with the very same layout restores shard by
  shard with `config.init.from_workdir` instead (jaxvision/stages.py).
  """
  init = config.init
  if init.npz and init.workdir:
    raise config_lib.ConfigError('set only one of config.init.npz and config.init.workdir')
  if init.npz:
    return vit_checkpoint.load_big_vision_npz(init.npz, params, dont_load=tuple(init.dont_load))
  if init.workdir:
    from jaxvision import checkpoint  # pylint: disable=g-import-not-at-top
    loaded = checkpoint.load_params(init.workdir)
    return vit_checkpoint.merge_params(loaded, params, dont_load=tuple(init.dont_load))
  return params
