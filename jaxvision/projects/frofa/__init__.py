"""FroFA: frozen feature augmentation for few-shot classification (Bär et al., CVPR 2024).

A frozen backbone's feature grids (cached once, `data.py`, `backbones.py`) train a
lightweight MAP head (`model.py`) with FroFA — image augmentations applied to the
features after min-max mapping them into an image range (`mapping.py`, `augment.py`,
`ops_*.py`) — inside the jitted train step; the shared evaluators report the head's
accuracy and the closed-form linear probe (`evaluators.py`).  `study.py` runs the
few-shot protocol (shots x seeds x methods, hyper-parameters picked on val, test
mean ± std).  See README.md in this folder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxvision import config as config_lib
from jaxvision.data import pipeline
from jaxvision.data.sources import ArraySource
from jaxvision.projects.frofa import augment
from jaxvision.projects.frofa import backbones
from jaxvision.projects.frofa import data
from jaxvision.projects.frofa import model as model_lib
from jaxvision.projects.frofa.evaluators import eval_data  # pylint: disable=unused-import
from jaxvision.projects.frofa.evaluators import predict_fns  # pylint: disable=unused-import

__all__ = ['default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
           'make_dataset', 'predict_fns', 'eval_data']


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'model': {
          'num_classes': config_lib.REQUIRED,
          'num_heads': 8,
          'mlp_dim': 0,              # 0 = 4x the feature width
          'pool': 'map',             # 'map' (MAP head) | 'gap' (linear on mean-pooled)
          'head_zeroinit': True,
          'dtype_mm': 'float32',
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
      'loss': {'label_smoothing': 0.0},
  })


def make_model(model_cfg) -> model_lib.MAPClassifier:
  return model_lib.MAPClassifier(
      num_classes=model_cfg.num_classes, num_heads=model_cfg.num_heads,
      mlp_dim=model_cfg.mlp_dim or None, pool=model_cfg.pool,
      head_zeroinit=model_cfg.head_zeroinit, dtype_mm=model_cfg.dtype_mm)


def init_params(model, rng, batch):
  return model.init({'params': rng}, batch['features'], train=False)['params']


def batch_spec(config, split: str):
  del split
  b = config.input.batch_size
  return {'features': jax.ShapeDtypeStruct((b, *data.feature_shape(config.input)), jnp.float32),
          'label': jax.ShapeDtypeStruct((b,), jnp.int32)}


def loss_fn(params, batch, rng, *, model, config):
  """Softmax cross-entropy of the head on FroFA-augmented features (the frozen backbone
  is not involved: features come from the cache)."""
  policy = augment.make_policy(config.augment)
  k_aug, k_dropout = jax.random.split(rng)
  targets = jax.nn.one_hot(batch['label'], config.model.num_classes, dtype=jnp.float32)
  feats, targets = augment.augment_batch(policy, k_aug, batch['features'], targets)
  if config.loss.label_smoothing:
    targets = optax.smooth_labels(targets, config.loss.label_smoothing)
  logits = model.apply({'params': params}, feats, train=True, rngs={'dropout': k_dropout})
  loss = jnp.mean(optax.softmax_cross_entropy(logits.astype(jnp.float32), targets))
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
  return loss, {'accuracy': accuracy}


def make_dataset(config, split, *, seed, process_index, process_count):
  del split
  train = data.fewshot_train(config.input)
  return pipeline.train_dataset(
      ArraySource(train), global_batch_size=config.input.batch_size, seed=seed,
      process_index=process_index, process_count=process_count)
