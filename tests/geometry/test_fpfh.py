"""FPFH, normals and voxel down-sampling against closed forms and invariances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.data import meshes
from jaxvision.geometry import fpfh

RODENT = 'locomotion/walkers/assets/rodent_walker_skin.skn'


@pytest.fixture(scope='module')
def cloud():
  pts = meshes.read_point_cloud(meshes.packaged_file('dm_control', RODENT))
  return pts[np.random.default_rng(0).choice(len(pts), 1500, replace=False)]


def test_voxel_down_sample_is_the_mean_per_voxel():
  rng = np.random.default_rng(0)
  pts = rng.uniform(0, 1, (500, 3))
  v = 0.25
  got = fpfh.voxel_down_sample(pts, v)
  cell = np.floor((pts - (pts.min(0) - v / 2)) / v).astype(int)
  ref = {tuple(c): pts[np.all(cell == c, 1)].mean(0) for c in np.unique(cell, axis=0)}
  assert len(got) == len(ref)
  np.testing.assert_allclose(np.sort(got, 0), np.sort(np.array(list(ref.values())), 0))
  with pytest.raises(ValueError, match='voxel_size'):
    fpfh.voxel_down_sample(pts, 0.0)


def test_normals_of_a_plane_and_a_sphere():
  rng = np.random.default_rng(1)
  plane = np.c_[rng.uniform(-1, 1, (400, 2)), np.zeros(400)]
  n = fpfh.estimate_normals(plane + [0, 0, 5.0], 0.3)
  np.testing.assert_allclose(np.abs(n[:, 2]), 1.0, atol=1e-9)
  sphere = rng.normal(size=(2000, 3))
  sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
  n = fpfh.estimate_normals(sphere, 0.2)
  assert np.min(np.sum(n * sphere, 1)) > 0.98   # outward, along the radius


def test_pair_features_closed_forms():
  p1, p2 = np.zeros(3), np.array([1.0, 0, 0])
  up = np.array([0, 0, 1.0])
  np.testing.assert_allclose(fpfh.pair_features(p1, up, p2, up), [0, 0, 0, 1], atol=1e-12)
  # n2 tilted by 30° about the connecting line: φ = v·n2 = -sin 30°? v = dp × n1 = -y.
  tilt = np.array([0, np.sin(np.pi / 6), np.cos(np.pi / 6)])
  f = fpfh.pair_features(p1, up, p2, tilt)
  np.testing.assert_allclose(f, [0.0, -0.5, 0.0, 1.0], atol=1e-12)
  # Swapping the two points (and normals) gives the same features (the rule picks a side).
  n1 = np.array([0.6, 0, 0.8])
  np.testing.assert_allclose(fpfh.pair_features(p1, n1, p2, tilt),
                             fpfh.pair_features(p2, tilt, p1, n1), atol=1e-12)


def test_fpfh_blocks_sum_to_200_and_are_rigidly_invariant(cloud):
  r = 0.05
  nrm = fpfh.estimate_normals(cloud, 0.02)
  feat = fpfh.compute_fpfh(cloud, nrm, r)
  assert feat.shape == (len(cloud), 33)
  blocks = feat.reshape(-1, 3, 11).sum(-1)
  has_nb = blocks[:, 0] > 0
  assert has_nb.mean() > 0.95
  np.testing.assert_allclose(blocks[has_nb], 200.0, rtol=1e-9)   # SPFH 100 + neighbours 100
  rot = Rotation.from_euler('xyz', [30, -70, 140], degrees=True).as_matrix()
  moved = cloud @ rot.T + [1.0, 2.0, -3.0]
  feat2 = fpfh.compute_fpfh(moved, nrm @ rot.T, r)   # normals moved with the cloud
  # Each descriptor gathers ~10^4 pair features: round-off moves a few across bin edges
  # (one move shifts ~1 of 100 in a block), so compare per row in L1 against the block
  # mass (300): small everywhere, while a real change of normals or frame is not.
  rel = np.abs(feat2 - feat).sum(1) / 300.0
  assert np.median(rel) < 1e-3 and rel.max() < 0.03, (np.median(rel), rel.max())
  flipped = fpfh.compute_fpfh(cloud, -nrm, r)   # all normals reversed: a different descriptor
  assert np.median(np.abs(flipped - feat).sum(1) / 300.0) > 0.05
