"""FroFA: frozen feature augmentation for few-shot classification (Bär et al., CVPR 2024).

A frozen backbone's feature grids (cached once, `data.py`, `backbones.py`) train a
lightweight MAP head (`model.py`) with FroFA — image augmentations applied to the
features after min-max mapping them into an image range (`mapping.py`, `augment.py`,
`jaxvision.data.augment`) — inside the jitted train step; the shared evaluators report the
head's accuracy and the closed-form linear probe (`evaluators.py`).  With
`model.num_replicas = R` one run trains the heads of R few-shot seeds at once
(`replicas.py`); `study.py` drives such runs over methods x shots x hyper-parameters
(picked on val, test mean ± std).  See README.md in this folder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxvision import config as config_lib
from jaxvision.data import pipeline
from jaxvision.data.sources import ArraySource
from jaxvision.projects.frofa import augment
from jaxvision.projects.frofa import backbones
from jaxvision.projects.frofa import data
from jaxvision.projects.frofa import model as model_lib
from jaxvision.projects.frofa import probe_inputs
from jaxvision.projects.frofa import replicas
from jaxvision.projects.frofa.losses import loss_fn  # pylint: disable=unused-import
from jaxvision.projects.frofa.evaluators import eval_data  # pylint: disable=unused-import
from jaxvision.projects.frofa.evaluators import predict_fns  # pylint: disable=unused-import

kind = 'trained'   # the contract of jaxvision/projects/__init__.py
__all__ = ['kind', 'default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
           'make_dataset', 'predict_fns', 'eval_data', 'EVALUATORS']

# Replicated runs (`model.num_replicas`: the few-shot seeds as one run) report per seed.
EVALUATORS = replicas.EVALUATORS


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'model': {
          'num_classes': config_lib.REQUIRED,
          'num_heads': 8,
          'mlp_dim': 0,              # 0 = 4x the feature width
          'pool': 'map',             # 'map' (MAP head) | 'gap' (linear on mean-pooled)
          'head_zeroinit': True,
          'dtype_mm': 'float32',
          # R > 0: R independent heads, replica r trained on few-shot seed
          # input.fewshot_seed + r (replicas.py); one run = one seed sweep.
          'num_replicas': 0,
          'replica_impl': 'vmap',   # 'vmap' (nn.vmap) | 'scan' (nn.scan, one after the other)
          # linear-probe input of predict_fns: 'prelogits' (faithful) | 'mean_tokens'
          'probe_input': 'prelogits',
      },
      'input': {
          'dataset': config_lib.REQUIRED,   # 'digits' or a tfds name
          'data_dir': '',
          'image_key': 'image', 'label_key': 'label',
          'num_classes': config_lib.REQUIRED,
          'train_split': 'train', 'val_split': 'val', 'test_split': 'test',
          'classes': '',                    # digits only: e.g. '5-9' (labels 0..K-1)
          'train_pool_per_class': 0,        # 0 = cache the whole train split
          'max_eval_examples': 0,           # 0 = whole val/test splits
          'cache_dir': '', 'cache_root': '', 'cache_dtype': 'float32',
          'backbone': dict(backbones.BACKBONE_DEFAULTS),
          'shots': 5,                       # k-shot (0 = the whole cached train pool)
          'fewshot_seed': 0,
          'batch_size': config_lib.REQUIRED,
      },
      # FroFA policy (augment.py): policy, stages [{op, variant, magnitude, prob, options}],
      # num_ops, scale (1 or 255), quantize, fill, mixup_alpha, mixup_per_example.
      'augment': dict(augment.POLICY_DEFAULTS),
      # replica_grad_clip_norm: each replica's gradient norm clipped on its own
      # (num_replicas > 0, where optimizer.grad_clip_norm must be 0).
      'loss': {'label_smoothing': 0.0, 'replica_grad_clip_norm': 0.0},
  })


def make_model(model_cfg):
  head = dict(num_classes=model_cfg.num_classes, num_heads=model_cfg.num_heads,
              mlp_dim=model_cfg.mlp_dim or None, pool=model_cfg.pool,
              head_zeroinit=model_cfg.head_zeroinit, dtype_mm=model_cfg.dtype_mm)
  if model_cfg.get('num_replicas', 0):
    return model_lib.ReplicatedClassifier(int(model_cfg.num_replicas), head,
                                          impl=model_cfg.replica_impl)
  return model_lib.MAPClassifier(**head)


def init_params(model, rng, batch):
  return model.init({'params': rng}, batch['features'], train=False)['params']


def batch_spec(config, split: str):
  del split
  replicas.check_config(config)
  b, r = config.input.batch_size, int(config.model.num_replicas)
  lead = (b, r) if r else (b,)
  return {'features': jax.ShapeDtypeStruct((*lead, *data.feature_shape(config.input)),
                                           jnp.float32),
          'label': jax.ShapeDtypeStruct(lead, jnp.int32)}


def make_dataset(config, split, *, seed, process_index, process_count):
  del split
  if config.model.num_replicas:
    source = replicas.train_source(config.input, replicas.seeds(config))
  else:
    source = ArraySource(data.fewshot_train(config.input))
  return pipeline.train_dataset(
      source, global_batch_size=config.input.batch_size, seed=seed,
      process_index=process_index, process_count=process_count)
