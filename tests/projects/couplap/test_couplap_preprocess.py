"""Plane removal, mirroring, Fiedler length on real meshes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from jaxvision.data import meshes
from jaxvision.data import scan_synthesis
from jaxvision.projects.couplap import preprocess

FEMUR = 'suite/dog_assets/BONEFemoris_L.stl'


@pytest.fixture(scope='module')
def femur():
  return meshes.read_point_cloud(meshes.packaged_file('dm_control', FEMUR))


@pytest.mark.parametrize('below', [False, True])
def test_plane_removal_keeps_the_object_in_a_right_handed_frame(femur, below):
  rng = np.random.default_rng(0)
  obj = femur - femur.mean(0)
  obj = obj[:, [0, 2, 1]] * np.array([1, 1, 0.3])      # lying flat: small height extent
  obj[:, 2] += 0.01 - obj[:, 2].min()
  plane = np.c_[rng.uniform(-0.2, 0.2, (4000, 2)), rng.normal(0, 1e-5, 4000)]
  pts = np.concatenate([plane, obj, np.zeros((50, 3))])   # + missing (0, 0, 0) pixels
  if below:
    pts[:, 2] *= -1   # the object on the negative side of the plane
  fg = preprocess.remove_background_plane(pts, threshold=0.001)
  np.testing.assert_array_equal(np.sort(fg.index), np.arange(4000, 4000 + len(obj)))
  assert np.linalg.det(fg.axes) == pytest.approx(1.0)
  assert np.all(fg.points[:, 2] > 0.001)
  # A rigid change of frame: distances are preserved.
  d_in = np.linalg.norm(pts[fg.index[1:]] - pts[fg.index[0]], axis=1)
  np.testing.assert_allclose(np.linalg.norm(fg.points[1:] - fg.points[0], axis=1), d_in)


def test_pca_mirror_is_a_reflection(femur):
  m = preprocess.pca_mirror(femur)
  np.testing.assert_allclose(np.linalg.norm(m - m[0], axis=1),
                             np.linalg.norm(femur - femur[0], axis=1), atol=1e-12)
  np.testing.assert_allclose(preprocess.pca_mirror(m), femur, atol=1e-9)
  # The dog's right femur is its left one mirrored: the PCA mirror matches it up to a
  # rigid motion, so after centring and aligning principal axes the shapes coincide.
  right = meshes.read_point_cloud(meshes.packaged_file('dm_control',
                                                       FEMUR.replace('_L', '_R')))
  mean_r, axes_r = preprocess.pca_frame(right)
  mean_m, axes_m = preprocess.pca_frame(m)
  a, b = (right - mean_r) @ axes_r.T, (m - mean_m) @ axes_m.T
  best = min(np.max(cKDTree(a).query(b * s)[0])
             for s in ([1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]))
  assert best < 1e-5


@pytest.mark.parametrize('mass', ['inverse_degree', 'degree'])
def test_fiedler_length_is_scale_equivariant_and_near_the_long_axis(mass):
  # The low-poly femur's vertices split into kNN components (long shaft triangles):
  # sample its surface densely instead, as the BSE benchmark does.
  v, f = meshes.read_mesh(meshes.packaged_file('dm_control', FEMUR))
  cloud = scan_synthesis.sample_surface(*meshes.unique_vertices(v, f), 3000,
                                        np.random.default_rng(0)).points
  length = preprocess.fiedler_length(cloud, mass=mass)
  assert preprocess.fiedler_length(2.5 * cloud + 3.0, mass=mass) == pytest.approx(2.5 * length,
                                                                                 rel=1e-4)
  _, axes = preprocess.pca_frame(cloud)
  extent = np.ptp(cloud @ axes[0])
  assert 0.6 * extent < length < extent
