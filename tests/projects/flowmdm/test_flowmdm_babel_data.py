"""FlowMDM's Babel inputs as upstream: per-window features, upstream's statistics."""

import json
import os

import ml_collections
import numpy as np
import pytest

from jaxvision import config as config_lib
from jaxvision.data import babel
from jaxvision.projects.flowmdm import smpl_features
from jaxvision.projects.flowmdm import babel_stats
from jaxvision.projects.flowmdm import data as data_lib

SHARED = '/work/shared/data/flowmdm'


def test_shipped_stats_are_upstreams():
  mean, std = babel_stats.babel_stats()
  assert mean.shape == std.shape == (smpl_features.FEATURE_DIM,)
  assert mean.dtype == std.dtype == np.float32 and std.min() > 0
  # Upstream divides by std + 1e-12: identical in float32 at these stds.
  np.testing.assert_array_equal(std + np.float32(1e-12), std)
  if not os.path.isdir(SHARED):
    pytest.skip('upstream statistics (numpy copies) not on this machine')
  np.testing.assert_array_equal(mean, np.load(os.path.join(SHARED, 'babel_rfeats_mean.npy')))
  np.testing.assert_array_equal(std, np.load(os.path.join(SHARED, 'babel_rfeats_std.npy')))


def _babel_dir(tmp_path):
  rng = np.random.default_rng(0)
  root = tmp_path / 'babel'
  (root / 'motions').mkdir(parents=True)
  poses = rng.normal(scale=0.3, size=(160, 156))
  trans = np.cumsum(rng.normal(scale=0.02, size=(160, 3)), axis=0) + [0, 0, 0.9]
  np.savez(root / 'motions' / 's1.npz', poses=poses, trans=trans)
  labels = [{'proc_label': 'walk', 'start_t': 0.0, 'end_t': 2.0},
            {'proc_label': 'transition', 'start_t': 1.9, 'end_t': 2.5},
            {'proc_label': 'sitdown', 'start_t': 2.4, 'end_t': 5.0},
            {'proc_label': 'wave', 'start_t': 0.5, 'end_t': 1.0}]   # inside 'walk': no link
  (root / 'train.json').write_text(json.dumps({'s1': {'frame_ann': {'labels': labels}}}))
  return str(root), poses, trans


def _input(root, **kw):
  cfg = dict(dataset='babel', data_dir=root, fps=30.0, min_length=45, max_length=250,
             window_frames=200, max_segments=10, stats='upstream', babel_features='window')
  return ml_collections.ConfigDict({**cfg, **kw})


def test_babel_records_are_window_features_over_upstream_stats(tmp_path):
  root, poses, trans = _babel_dir(tmp_path)
  recs = data_lib.load_records(_input(root), 'train')
  # walk (0, 60) -> transition (56, 75) -> sit down (72, 150) (int(t * 30)): one window,
  # the 12-frame gap split between the neighbours: walk to frame 66, sit down from 67.
  assert [(r.texts, r.lengths) for r in recs] == [(('walk', 'sit down'), (67, 83))]
  mean, std = babel_stats.babel_stats()
  feats = smpl_features.window_features(poses, trans, 0, 150)
  np.testing.assert_allclose(recs[0].motion * std + mean, feats, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(recs[0].motion, (feats - mean) / std, rtol=1e-5, atol=1e-5)


def test_upstream_stats_are_babels_only(tmp_path):
  cfg = _input('', stats='upstream')
  cfg.dataset = 'humanml3d'
  with pytest.raises(config_lib.ConfigError, match='Babel'):
    data_lib.stats(cfg)
  with pytest.raises(config_lib.ConfigError, match='stats'):
    data_lib.stats(_input('', stats='mine'))


def test_bad_babel_smpl_files_are_named(tmp_path):
  root, poses, _ = _babel_dir(tmp_path)
  path = os.path.join(root, 'motions', 's1.npz')
  np.savez(path, poses=poses)
  with pytest.raises(babel.DataFileError, match=r"s1\.npz.*missing arrays \['trans'\]"):
    data_lib.load_records(_input(root), 'train')
  np.savez(path, poses=poses[:, :30], trans=np.zeros((160, 3)))
  with pytest.raises(babel.DataFileError, match='poses'):
    data_lib.load_records(_input(root), 'train')
  with pytest.raises(ValueError, match="features='frames'"):
    babel.read_windows(root, 'train', features='frames')
