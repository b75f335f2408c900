"""Coupled Laplacian eigenmaps for rigid point-cloud matching (Bastico et al., CVPR 2024).

Anomaly localisation on MVTec 3D-AD-layout scans and bone side estimation, with no
training: an evaluate-only project (kind (b) of `jaxvision/projects/__init__.py`).  There
is no model, loss, optimizer or train step; the evaluators run the pipelines
(`anomaly.py`, `bone_side.py`) built on `jaxvision.geometry`, and the point-wise score
(Eq. 9, cosine distance of coupled-eigenmap rows) is `metrics`' `cosine_distance_rows`.
See README.md in this folder.
"""

from __future__ import annotations

import ml_collections

from jaxvision import config as config_lib
from jaxvision.projects.couplap import anomaly
from jaxvision.projects.couplap import data as benchmark_data
from jaxvision.projects.couplap import bone_side
from jaxvision.projects.couplap.evaluators import EVALUATORS  # pylint: disable=unused-import

kind = 'evaluate_only'   # the contract of jaxvision/projects/__init__.py

__all__ = ['kind', 'default_config', 'EVALUATORS']


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
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
      },
      # Every pipeline setting, defaults from the dataclasses (one source of truth).
      'anomaly': anomaly.config_defaults(),
      'bse': bone_side.config_defaults(),
  })


def benchmark_data_bones():
  return tuple(benchmark_data.BONES)
