"""Coupled Laplacian eigenmaps for rigid point-cloud matching (Bastico et al., CVPR 2024).

Anomaly localisation on MVTec 3D-AD-layout scans and bone side estimation, with no
training: configs are evaluate-only (`total_steps = 0`) and the evaluators run the
pipelines (`anomaly.py`, `bone_side.py`) built on `jaxvision.geometry`.  The "model" is
the parameter-free cosine score head (`model.py`).  See README.md in this folder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxvision import config as config_lib
from jaxvision.projects.couplap import benchmark_data
from jaxvision.projects.couplap import model as model_lib
from jaxvision.projects.couplap.evaluators import EVALUATORS  # pylint: disable=unused-import

__all__ = ['default_config', 'make_model', 'init_params', 'batch_spec', 'loss_fn',
           'make_dataset', 'EVALUATORS']


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'model': {'maps': 200},            # width of the score head's input rows
      'input': {
          # Anomaly data: an MVTec 3D-AD root ('' = the embedded benchmark below).
          'data_dir': '',
          'classes': (),                 # () = every class under the root
          # BSE data: `<Bone>_<L|R>/*.{ply,obj,stl}` folders ('' = embedded benchmark).
          'bse_dir': '',
          'bones': benchmark_data_bones(),
          'cache_dir': '',               # '' = $JAXVISION_CACHE or ~/.cache/jaxvision
          'embedded_anomaly': {'classes': ('dog', 'rodent'), 'n_good': 3, 'n_per_defect': 3,
                               'resolution': 640, 'seed': 0},
          'embedded_bse': {'bones': benchmark_data_bones(), 'n_per_side': 3,
                           'n_points': 13000, 'seed': 0},
          'batch_size': 0,               # score-head rows per batch; 0 = one per device (no training)
      },
      'anomaly': {
          'methods': ('coupled', 'euclidean', 'independent', 'histogram'),
          'n_points': 13000, 'threshold': 0.001, 'k': 10, 'maps': 200, 'cross': 0.5,
          'cross_mode': 'upstream', 'solver': 'auto', 'cpd_down': 3000, 'cpd_iters': 50,
          'affine': True, 'bins': 200, 'closing': True,
      },
      'bse': {
          'methods': ('spectral', 'chamfer', 'hausdorff'),
          'max_points': 13000, 'k': 10, 'maps': 20, 'cross': 0.2, 'cross_mode': 'upstream',
          'solver': 'auto', 'fiedler_threshold': 100, 'fiedler_mass': 'inverse_degree',
          'grassmann_clip': False,
      },
  })


def benchmark_data_bones():
  return tuple(benchmark_data.BONES)


def make_model(model_cfg) -> model_lib.CosineMatchScore:
  del model_cfg
  return model_lib.CosineMatchScore()


def init_params(model, rng, batch):
  variables = model.init({'params': rng}, batch['source_maps'], batch['target_maps'])
  return variables.get('params', {})


def batch_spec(config, split: str):
  del split
  shape = (config.input.batch_size or jax.device_count(), config.model.maps)
  return {'source_maps': jax.ShapeDtypeStruct(shape, jnp.float32),
          'target_maps': jax.ShapeDtypeStruct(shape, jnp.float32)}


def loss_fn(params, batch, rng, *, model, config):
  """The mean matching score of a batch of row pairs (nothing in it is trainable)."""
  del rng, config
  scores = model.apply({'params': params}, batch['source_maps'], batch['target_maps'])
  return jnp.mean(scores), {'max_score': jnp.max(scores)}


def make_dataset(config, split, *, seed, process_index, process_count):
  del config, seed, process_index, process_count
  raise config_lib.ConfigError(
      f'couplap has nothing to train (split {split!r} requested): Coupled Laplacian '
      'eigenmaps are computed, not learned; run it with config.total_steps=0')
