"""Registration recovers known transforms on the real rodent skin cloud."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.data import meshes
from jaxvision.geometry import cpd
from jaxvision.geometry import registration as reg

RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


@pytest.fixture(scope='module')
def skin():
  return meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))


def _angle_deg(r1, r2):
  return np.degrees(Rotation.from_matrix(r1 @ r2.T).magnitude())


def test_kabsch_recovers_exact_transform(skin):
  rot = Rotation.from_euler('zyx', [170, -40, 65], degrees=True).as_matrix()
  t = np.array([0.5, -2.0, 1.0])
  fit = reg.kabsch(skin, skin @ rot.T + t)
  np.testing.assert_allclose(fit.rotation, rot, atol=1e-6)
  np.testing.assert_allclose(fit.translation, t, atol=1e-6)


def test_kabsch_never_returns_a_reflection(skin):
  mirrored = skin * np.array([1.0, -1.0, 1.0])
  fit = reg.kabsch(skin, mirrored)
  assert np.linalg.det(fit.rotation) == pytest.approx(1.0)


def test_icp_converges_from_a_small_perturbation(skin):
  rot = Rotation.from_rotvec([0.1, -0.05, 0.12]).as_matrix()
  t = np.array([0.01, 0.0, -0.005])
  target = skin @ rot.T + t
  fit = reg.icp(skin, target, max_iter=100, trim=1.0)
  assert _angle_deg(fit.rotation, rot) < 1e-3
  np.testing.assert_allclose(fit.translation, t, atol=1e-5)


@pytest.mark.parametrize('angles', [(180, 0, 0), (95, -60, 150), (-30, 170, 20)])
def test_global_registration_handles_large_rotations_and_resampling(skin, angles):
  rng = np.random.default_rng(0)
  source = skin[rng.choice(len(skin), 2000, replace=False)]
  other = skin[rng.choice(len(skin), 2000, replace=False)]   # independent sample
  rot = Rotation.from_euler('zyx', angles, degrees=True).as_matrix()
  t = np.array([1.0, -0.3, 0.7])
  fit = reg.global_registration(source, other @ rot.T + t, seed=1)
  assert _angle_deg(fit.rotation, rot) < 2.0
  np.testing.assert_allclose(fit.translation, t, atol=3e-3)


def test_registration_rejects_bad_input():
  with pytest.raises(ValueError, match='NaN'):
    reg.kabsch(np.full((5, 3), np.nan), np.zeros((5, 3)))
  with pytest.raises(ValueError, match='paired'):
    reg.kabsch(np.random.default_rng(0).normal(size=(5, 3)), np.zeros((6, 3)))
  with pytest.raises(ValueError, match='w must be'):
    cpd.affine_cpd(np.eye(5, 3), np.eye(5, 3), w=1.0)
