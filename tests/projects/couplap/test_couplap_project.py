"""Embedded benchmarks (real meshes → MVTec layout / bone folders), evaluators, contract."""

from __future__ import annotations

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
from jaxvision.projects.couplap import benchmark_data as bd
from jaxvision.projects.couplap import evaluators


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


def test_contract_and_clear_errors():
  c = couplap.default_config()
  model = couplap.make_model(c.model)
  spec = couplap.batch_spec(c, 'train')
  batch = {k: np.ones(s.shape, s.dtype) for k, s in spec.items()}
  params = couplap.init_params(model, jax.random.key(0), batch)
  assert not params   # parameter-free
  loss, aux = couplap.loss_fn(params, batch, jax.random.key(1), model=model, config=c)
  assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(aux['max_score']) < 1e-6
  with pytest.raises(config_lib.ConfigError, match='total_steps=0'):
    couplap.make_dataset(c, 'train', seed=0, process_index=0, process_count=1)
  bad = ml_collections.ConfigDict({'project': 'couplap', 'total_steps': 0,
                                   'evals': {'x': {'type': 'segmentation'}}})
  with pytest.raises(config_lib.ConfigError, match="type='segmentation'.*own evaluator types: "
                     "'anomaly', 'bse'"):
    train.train(bad, '/tmp/couplap_bad_config')
