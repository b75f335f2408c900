"""FPFH-RANSAC global registration recovers large rigid motions on a real cloud."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.data import meshes
from jaxvision.geometry import ransac

RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


@pytest.fixture(scope='module')
def skin():
  return meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))


@pytest.mark.parametrize('angles', [(120, -50, 70), (180, 0, 0)])
def test_fpfh_ransac_recovers_a_large_rotation_from_independent_samples(skin, angles):
  rng = np.random.default_rng(0)
  rot = Rotation.from_euler('zyx', angles, degrees=True).as_matrix()
  t = np.array([0.1, -0.2, 0.05])
  src = skin[rng.choice(len(skin), 3000, replace=False)]
  tgt = skin[rng.choice(len(skin), 3000, replace=False)] @ rot.T + t
  fit = ransac.fpfh_ransac(src, tgt, ransac.RansacSettings(voxel_size=0.004), seed=0)
  assert np.degrees(Rotation.from_matrix(fit.rotation @ rot.T).magnitude()) < 2.0
  np.testing.assert_allclose(fit.translation, t, atol=3e-3)
  assert np.linalg.det(fit.rotation) > 0


def test_ransac_on_exact_correspondences_and_checkers():
  rng = np.random.default_rng(1)
  src = rng.normal(size=(200, 3))
  rot = Rotation.from_euler('xyz', [10, 170, -40], degrees=True).as_matrix()
  tgt = src @ rot.T + 1.0
  pairs = np.stack([np.arange(200), np.arange(200)], 1)
  pairs[:60, 1] = rng.permutation(60)     # 30% wrong matches
  fit = ransac.ransac_on_correspondences(src, tgt, pairs,
                                         ransac.RansacSettings(voxel_size=0.01),
                                         np.random.default_rng(0))
  np.testing.assert_allclose(fit.rotation, rot, atol=1e-9)
  mutual = ransac.feature_correspondences(src, src + 1e-3)
  np.testing.assert_array_equal(mutual, np.stack([np.arange(200)] * 2, 1))
  with pytest.raises(ValueError, match='correspondences'):
    ransac.ransac_on_correspondences(src, tgt, pairs[:2], ransac.RansacSettings(0.01),
                                     np.random.default_rng(0))
