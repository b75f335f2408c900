"""Chamfer and Hausdorff distances against brute-force pairwise distances."""

from __future__ import annotations

import numpy as np
import pytest

from jaxvision.geometry import distances


def test_chamfer_and_hausdorff_match_brute_force():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(70, 3)), rng.normal(size=(50, 3)) + 0.3
  d = np.linalg.norm(a[:, None] - b[None], axis=-1)
  assert distances.chamfer_distance(a, b) == pytest.approx(d.min(0).mean() + d.min(1).mean())
  assert distances.hausdorff_distance(a, b) == pytest.approx(max(d.min(0).max(), d.min(1).max()))
  assert distances.chamfer_distance(a, a) == 0.0
  with pytest.raises(ValueError, match='second cloud'):
    distances.chamfer_distance(a, np.full((3, 3), np.nan))
