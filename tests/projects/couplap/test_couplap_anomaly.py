"""Anomaly pipeline options: upstream's pixel mapping, FPFH-RANSAC registration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from sklearn.decomposition import PCA

from jaxvision.data import meshes
from jaxvision.projects.couplap import anomaly as ad

FEMUR = 'suite/dog_assets/BONEFemoris_L.stl'
RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


def _scan(below: bool):
  femur = meshes.read_point_cloud(meshes.packaged_file('dm_control', FEMUR))
  rng = np.random.default_rng(0)
  obj = femur - femur.mean(0)
  obj = obj[:, [0, 2, 1]] * np.array([1, 1, 0.3])
  obj[:, 2] += 0.01 - obj[:, 2].min()
  plane = np.c_[rng.uniform(-0.2, 0.2, (4000, 2)), rng.normal(0, 1e-5, 4000)]
  pts = np.concatenate([plane, obj, np.zeros((50, 3))])
  if below:
    pts[:, 2] *= -1
  return pts[:, None, :]          # an organised H×1 scan


@pytest.mark.parametrize('below', [False, True])
def test_upstream_pixel_mapping_is_inverse_pca_then_nearest_pixel(below):
  xyz = _scan(below)
  settings = ad.ADSettings(n_points=0, pixel_mapping='upstream')
  scan = ad.load_scan(xyz, settings, np.random.default_rng(0))
  assert scan.flipped == below
  idx = np.arange(0, len(scan.points), 7)
  got = ad.upstream_pixels(scan, idx)
  # Upstream's recipe with scikit-learn's PCA: the stored point has PC3 negated when the
  # object lay below; inverse_transform, then the nearest pixel of the whole scan.
  flat = xyz.reshape(-1, 3)
  valid = flat[~np.all(flat == 0, axis=1)]
  pca = PCA(n_components=3).fit(valid)
  stored = pca.transform(flat[scan.pixel[idx]])
  if below:
    stored[:, 2] *= -1
  ref = cKDTree(flat).query(pca.inverse_transform(stored))[1]
  np.testing.assert_array_equal(got, ref)
  if below:   # the flip sends the scores to other (mirrored-neighbourhood) pixels
    assert np.mean(got != scan.pixel[idx]) > 0.9
  else:
    np.testing.assert_array_equal(got, scan.pixel[idx])
  exact = ad.load_scan(xyz, ad.ADSettings(n_points=0), np.random.default_rng(0))
  with pytest.raises(ValueError, match='upstream pixel mapping'):
    ad.upstream_pixels(exact, idx)


def test_fpfh_ransac_registration_option_moves_the_reference_onto_the_scan():
  skin = meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))
  rng = np.random.default_rng(1)
  src = skin[rng.choice(len(skin), 3000, replace=False)]
  rot = Rotation.from_euler('zyx', [100, 40, -20], degrees=True).as_matrix()
  tgt = skin[rng.choice(len(skin), 3000, replace=False)] @ rot.T
  size = np.ptp(skin, 0).max()
  settings = ad.ADSettings(registration='fpfh_ransac', ransac_voxel=0.01 * size, affine=False)
  moved = ad.register(src, tgt, settings, np.random.default_rng(0))
  truth = src @ rot.T
  assert np.median(np.linalg.norm(moved - truth, axis=1)) < 0.02 * size
  with pytest.raises(ValueError, match='registration'):
    ad.register(src, tgt, dataclasses.replace(settings, registration='open3d'),
                np.random.default_rng(0))
