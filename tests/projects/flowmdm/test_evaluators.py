"""Composition evaluator pieces: decoding features to joints, jerk at transitions."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision import config as config_lib
from jaxvision.data import deepmimic
from jaxvision.data import motion_representation as mr
from jaxvision.projects.flowmdm import smpl_features
from jaxvision.metrics import jerk
from jaxvision.projects.flowmdm import evaluators


def test_humanml3d_style_decoder_and_transition_jerk():
  clips = ('walk', 'jump', 'kick')
  feats = [mr.extract_features(deepmimic.clip_positions(c), deepmimic.skeleton())[0] for c in clips]
  lengths = [len(f) for f in feats]
  seq = np.concatenate(feats)
  decode = evaluators.make_decoder(215)
  curve = evaluators.transition_jerk(seq[None], [lengths], 10, decode)
  # By hand: two windows, each decoded on its own, jerk averaged over them.
  windows = [seq[m - 5:m + 5] for m in np.cumsum(lengths)[:-1]]
  by_hand = jerk.jerk_curve(np.stack([mr.recover_from_ric(w, 18) for w in windows]), [10, 10])
  np.testing.assert_allclose(curve, by_hand)
  # Concatenating real clips makes abrupt transitions: peaks above the clips' own jerk.
  within = jerk.jerk_curve(mr.recover_from_ric(feats[0][None, :20], 18), [20])
  assert jerk.peak_jerk(curve) > jerk.peak_jerk(within)


def test_babel_decoder_needs_rest_joints(tmp_path):
  with pytest.raises(config_lib.ConfigError, match='smpl_rest_joints'):
    evaluators.make_decoder(135)
  rest = np.random.default_rng(0).normal(size=(22, 3))
  np.save(tmp_path / 'rest.npy', rest)
  rots = np.tile(np.eye(3), (6, 22, 1, 1))
  rots[:, 0] = Rotation.from_rotvec([0, 0, 0.4]).as_matrix()
  trans = np.cumsum(np.full((6, 3), 0.1), axis=0)
  feats = smpl_features.rotations_to_features(rots, trans)
  joints = evaluators.make_decoder(135, str(tmp_path / 'rest.npy'))(feats)
  assert joints.shape == (6, 22, 3)
  # A rigid body moving at constant velocity: zero jerk.
  np.testing.assert_allclose(jerk.frame_jerk(joints[None], [6]), 0.0, atol=1e-12)
