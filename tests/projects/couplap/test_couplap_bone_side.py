"""BSE options: upstream's FPFH baseline (with its quirks), partial bones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jaxvision.data import meshes
from jaxvision.projects.couplap import bone_side as bs
from jaxvision.projects.couplap import preprocess

FEMUR = 'suite/dog_assets/BONEFemoris_L.stl'


@pytest.fixture(scope='module')
def femur():
  pts = meshes.read_point_cloud(meshes.packaged_file('dm_control', FEMUR))
  return (pts - pts.mean(0)) * 1000.0   # millimetres, as upstream's bones


def test_partial_target_keeps_the_lowest_points(femur):
  part = bs.partial_target(femur, 100, axis=2)
  assert part.shape == (100, 3)
  assert part[:, 2].max() <= np.sort(femur[:, 2])[99]


def test_fpfh_baseline_quirks(femur):
  settings = bs.BSESettings(cross=0.5, fpfh_radii=(8.0, 20.0))
  mirrored = preprocess.pca_mirror(femur)
  other = femur + np.random.default_rng(0).normal(0, 0.5, femur.shape)
  clean = dataclasses.replace(settings, fpfh_mode='clean')
  d_s, d_m = bs.fpfh_distances(femur, femur, mirrored, clean)
  assert d_s == pytest.approx(0.0, abs=1e-6) and d_m > d_s
  # Upstream's mirrored distance compares source with mirrored source: the target only
  # picks the cross points, so a noisy target leaves it close to the exact-target one,
  # while the clean distance to the target grows.
  up_exact = bs.fpfh_distances(femur, femur, mirrored, settings)
  up_noisy = bs.fpfh_distances(other, femur, mirrored, settings)
  assert up_exact[0] == pytest.approx(0.0, abs=1e-6)
  assert bs.fpfh_distances(other, femur, mirrored, clean)[0] > 10 * abs(up_noisy[1] - up_exact[1])
  with pytest.raises(ValueError, match='fpfh_mode'):
    bs.fpfh_distances(femur, femur, mirrored, dataclasses.replace(settings, fpfh_mode='x'))


def test_partial_bse_runs_without_fiedler_scaling(femur):
  settings = bs.BSESettings(partial=400, maps=5, cross=0.5, fpfh_radii=(8.0, 20.0))
  out = bs.predict_same_side(femur, femur, settings, methods=('chamfer', 'fpfh'))
  full = bs.predict_same_side(femur, femur, dataclasses.replace(settings, partial=0),
                              methods=('chamfer',))
  assert full['chamfer'][1] < 1e-3          # the whole bone onto itself (mm)
  assert out['chamfer'][1] > 1.0            # the fragment: the source's far end is unmatched
  with pytest.raises(ValueError, match='registration'):
    bs.predict_same_side(femur, femur, dataclasses.replace(settings, registration='x'),
                         methods=('chamfer',))
