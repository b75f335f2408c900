"""Embedded benchmarks (real meshes → MVTec layout / bone folders), evaluators, contract."""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import jax
import ml_collections
import numpy as np
import pytest

from jaxvision import config as config_lib
from jaxvision import train
from jaxvision.data import meshes
from jaxvision.data import mvtec3d
from jaxvision.data import scan_synthesis as scans
from jaxvision.projects import couplap
from jaxvision.projects.couplap import anomaly as ad
from jaxvision.projects.couplap import data as bd
from jaxvision.projects.couplap import evaluators
from tests import helpers


@pytest.fixture(scope='module')
def ad_root(tmp_path_factory):
  return bd.anomaly_benchmark(classes=('rodent',), n_good=1, n_per_defect=1, resolution=160,
                              root=str(tmp_path_factory.mktemp('bench')))


def test_anomaly_benchmark_is_an_mvtec_layout_read_by_the_reader(ad_root):
  assert mvtec3d.list_classes(ad_root) == ['rodent']
  samples = mvtec3d.test_samples(ad_root, 'rodent')
  assert sorted({s.defect for s in samples}) == ['bump', 'crack', 'dent', 'good', 'hole']
  ref = mvtec3d.read_xyz(mvtec3d.train_good(ad_root, 'rodent')[0].xyz_path)
  for s in samples:
    xyz = mvtec3d.read_xyz(s.xyz_path)
    gt = mvtec3d.read_gt(s.gt_path, xyz.shape[:2])
    assert xyz.shape == ref.shape == (160, 160, 3)
    if s.defect == 'good':
      assert not gt.any()
    else:
      assert 3 <= gt.sum() < 400, s.defect
      seen = gt & np.any(xyz != 0, axis=-1)   # dropped pixels read (0, 0, 0)
      assert np.all(xyz[seen][:, 2] > 0.001)   # the anomaly lies on the object, not the table
    # Independently re-sampled and moved: never equal to the reference scan.
    assert not np.allclose(xyz, ref)


def test_scan_reader_pipeline_keeps_pixels(ad_root):
  s = mvtec3d.test_samples(ad_root, 'rodent')[0]
  xyz = mvtec3d.read_xyz(s.xyz_path)
  scan = ad.load_scan(xyz, ad.ADSettings(n_points=800), np.random.default_rng(0))
  assert len(scan.points) <= 800 and scan.sampling_factor > 1
  # Points are the scanned pixels' xyz in a rigid (distance-preserving) frame.
  raw = xyz.reshape(-1, 3)[scan.pixel].astype(np.float64)
  d_raw = np.linalg.norm(raw[1:50] - raw[0], axis=1)
  d_pts = np.linalg.norm(scan.points[1:50] - scan.points[0], axis=1)
  np.testing.assert_allclose(d_pts, d_raw, rtol=1e-5, atol=1e-7)
  assert scan.foreground_mask()[np.unravel_index(scan.pixel, scan.shape)].all()


def test_anomaly_displacement_closed_forms():
  pts = np.array([[0.0, 0, 0], [0.5, 0, 0], [2.0, 0, 0]])
  bump = scans.anomaly_displacement(pts, 'bump', [0, 0, 0], [1, 0, 0], 1.0, 0.1)
  np.testing.assert_allclose(bump, [0.1, 0.1 * 0.75 ** 2, 0.0])
  hole = scans.anomaly_displacement(pts, 'hole', [0, 0, 0], [1, 0, 0], 1.0, 0.1)
  np.testing.assert_allclose(hole, [-0.2, -0.2, 0.0])
  crack = scans.anomaly_displacement(np.array([[1.2, 0, 0], [0, 0.5, 0]]), 'crack',
                                     [0, 0, 0], [1, 0, 0], 1.0, 0.1)
  np.testing.assert_allclose(crack, [-0.1, 0.0])   # along the segment, off its width
  with pytest.raises(ValueError, match='anomaly kind'):
    scans.anomaly_displacement(pts, 'scratch', [0, 0, 0], [1, 0, 0], 1.0, 0.1)


def test_render_scan_keeps_the_highest_point_per_pixel():
  pts = np.array([[0.01, 0.01, 0.2], [0.012, 0.011, 0.5], [-0.5, -0.5, 0.1]])
  xyz, val, mask = scans.render_scan(pts, resolution=4, half_width=1.0, values=[1, 2, 3])
  assert mask.sum() == 2 and sorted(val[mask]) == [2, 3]
  np.testing.assert_allclose(xyz[val == 2][0], pts[1], atol=1e-7)
  assert np.all(xyz[~mask][:, 2] == 0)   # the table plane


def test_bse_benchmark_folders_and_chirality(tmp_path):
  root = bd.bse_benchmark(bones=('Femoris',), n_per_side=1, n_points=500, root=str(tmp_path))
  inst = bd.bse_instances(root, 'Femoris')
  assert [side for _, side in inst] == ['R', 'L']
  clouds = [meshes.read_point_cloud(p) for p, _ in inst]
  assert all(c.shape == (500, 3) for c in clouds)


def _config(**anomaly):
  c = ml_collections.ConfigDict(couplap.default_config())
  c.anomaly.update(anomaly)
  return c


def test_evaluate_class_metrics_in_range(ad_root):
  settings = ad.ADSettings(n_points=600, maps=9, cpd_down=400)
  res = evaluators.evaluate_class(ad_root, 'rodent', settings, ('coupled', 'euclidean'),
                                  max_samples=3)
  for m in ('coupled', 'euclidean'):
    assert set(res[m]) == {'au_pro', 'fg_au_pro', 'point_auroc'}
    assert all(0.0 <= v <= 1.0 for v in res[m].values())


def test_contract_and_clear_errors(tmp_path):
  # Evaluate-only: no stand-in model, loss, dataset or optimizer section.
  assert couplap.kind == 'evaluate_only'
  for name in ('make_model', 'init_params', 'batch_spec', 'loss_fn', 'make_dataset'):
    assert not hasattr(couplap, name)
  c = config_lib.with_defaults(ml_collections.ConfigDict(
      {'project': 'couplap', 'evals': {'bse': {'type': 'bse'}}}))
  assert c.total_steps == 0 and 'optimizer' not in c and 'model' not in c
  with pytest.raises(config_lib.ConfigError, match='unknown config key .config.model'):
    config_lib.with_defaults(ml_collections.ConfigDict(
        {'project': 'couplap', 'model': {'maps': 3}}))
  with pytest.raises(config_lib.ConfigError, match='trains nothing; set it to 0'):
    train.train(ml_collections.ConfigDict({'project': 'couplap', 'total_steps': 5}),
                str(tmp_path / 'bad_steps'))
  bad = ml_collections.ConfigDict({'project': 'couplap', 'total_steps': 0,
                                   'evals': {'x': {'type': 'segmentation'}}})
  with pytest.raises(config_lib.ConfigError, match="type='segmentation'.*own evaluator types: "
                     "'anomaly', 'bse'"):
    train.train(bad, str(tmp_path / 'bad_config'))


def _experiment(name, arg):
  spec = importlib.util.spec_from_file_location(
      f'couplap_{name}', os.path.join(helpers.REPO, 'experiments', 'couplap', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def test_config_variants_reach_the_pipeline_settings():
  up = evaluators.anomaly_settings(_experiment('mvtec3d_ad', 'upstream').anomaly)
  assert (up.solver, up.registration, up.pixel_mapping, up.knn) == (
      'upstream', 'fpfh_ransac', 'upstream', 'sklearn')
  default = evaluators.anomaly_settings(_experiment('mvtec3d_ad', None).anomaly)
  assert (default.registration, default.pixel_mapping) == ('pca_icp', 'exact')
  bse = _experiment('bse', 'upstream,partial=3000')
  settings = evaluators.bse_settings(bse.bse)
  assert (settings.solver, settings.registration, settings.partial) == ('upstream', 'fpfh_ransac', 3000)
  assert 'fpfh' in bse.bse.methods
  assert _experiment('bse', None).bse.cross == 0.5          # README commands
  assert _experiment('bse', 'small').bse.cross == 0.2       # the README tables' setting
  # Every settings field is a config key (one source of truth).
  c = couplap.default_config()
  assert set(dataclasses.asdict(ad.ADSettings())) <= set(c.anomaly)
