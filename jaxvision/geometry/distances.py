"""Distances between two point sets: Chamfer and Hausdorff (KD-tree, float64).

Generic baselines for shape matching; Coupled Laplacian (Bastico et al., CVPR 2024),
Sec. 4.2, compares bone side estimation against both (upstream `model/bse.py` defines
Chamfer as the sum of the two mean nearest-neighbour distances).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from jaxvision.geometry import graphs


def chamfer_distance(a, b) -> float:
  """Mean nearest-neighbour distance both ways, summed (upstream `chamfer_distance`)."""
  a = graphs.check_points(a, 'first cloud', 1)
  b = graphs.check_points(b, 'second cloud', 1)
  return float(np.mean(cKDTree(a).query(b)[0]) + np.mean(cKDTree(b).query(a)[0]))


def hausdorff_distance(a, b) -> float:
  """Symmetric Hausdorff distance: the larger of the two directed maxima."""
  a = graphs.check_points(a, 'first cloud', 1)
  b = graphs.check_points(b, 'second cloud', 1)
  return float(max(np.max(cKDTree(a).query(b)[0]), np.max(cKDTree(b).query(a)[0])))
