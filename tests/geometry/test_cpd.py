"""Affine CPD recovers known affine maps on the real rodent skin cloud."""

from __future__ import annotations

import numpy as np
import pytest

from jaxvision.data import meshes
from jaxvision.geometry import cpd

RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


@pytest.fixture(scope='module')
def skin():
  return meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))


def test_affine_cpd_recovers_known_affine_map(skin):
  rng = np.random.default_rng(2)
  y = skin[rng.choice(len(skin), 1200, replace=False)]
  b = np.array([[1.05, 0.04, 0.0], [-0.03, 0.95, 0.02], [0.0, 0.05, 1.02]])
  t = np.array([0.01, -0.02, 0.005])
  fit = cpd.affine_cpd(y, y @ b.T + t, max_iter=200, tol=1e-6)
  np.testing.assert_allclose(fit.matrix, b, atol=1e-3)
  np.testing.assert_allclose(fit.translation, t, atol=2e-4)
  assert fit.sigma2 < 1e-5


def test_affine_cpd_refines_independent_samples(skin):
  rng = np.random.default_rng(3)
  y = skin[rng.choice(len(skin), 1500, replace=False)]
  x = skin[rng.choice(len(skin), 1500, replace=False)]
  b = np.diag([1.03, 0.98, 1.0])
  fit = cpd.affine_cpd(y, x @ b.T)
  np.testing.assert_allclose(fit.matrix, b, atol=0.02)
