"""Babel's 135-d features: canonicalisation, inverse, SMPL-chain forward kinematics."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.projects.flowmdm import smpl_features as sf


def _random_motion(rng, t=12):
  rots = Rotation.random(t * 22, random_state=rng.integers(1 << 30)).as_matrix().reshape(t, 22, 3, 3)
  trans = np.cumsum(rng.normal(0, 0.05, (t, 3)), axis=0) + [0.3, -0.2, 0.9]
  return rots, trans


def test_features_invert_to_the_canonical_motion():
  rng = np.random.default_rng(0)
  rots, trans = _random_motion(rng)
  feats = sf.rotations_to_features(rots, trans)
  assert feats.shape == (12, 135)
  back_rots, back_trans = sf.features_to_rotations(feats)
  r = sf.first_heading(rots[:, 0])
  np.testing.assert_allclose(back_rots[:, 1:], rots[:, 1:], atol=1e-12)
  np.testing.assert_allclose(back_rots[:, 0], np.einsum('kj,tkl->tjl', r, rots[:, 0]), atol=1e-12)
  xy = (trans[:, :2] - trans[:1, :2]) @ r[:2, :2]
  np.testing.assert_allclose(back_trans[:, :2], xy, atol=1e-12)
  np.testing.assert_allclose(back_trans[:, 2], trans[:, 2], atol=1e-12)
  assert np.all(feats[0, 1:3] == 0)


def test_canonical_first_heading_is_minus_a_quarter_turn():
  for yaw in (0.3, -2.0, 3.0):
    rots = np.tile(np.eye(3), (4, 22, 1, 1))
    rots[:, 0] = Rotation.from_rotvec([0, 0, yaw]).as_matrix()
    back, _ = sf.features_to_rotations(sf.rotations_to_features(rots, np.zeros((4, 3))))
    np.testing.assert_allclose(back[0, 0], Rotation.from_rotvec([0, 0, -np.pi / 2]).as_matrix(),
                               atol=1e-9)


def test_rot6d_is_the_first_two_rows():
  m = Rotation.random(5, random_state=1).as_matrix()
  np.testing.assert_allclose(sf.matrix_to_rot6d(m), m[:, :2].reshape(5, 6))
  np.testing.assert_allclose(sf.rot6d_to_matrix(sf.matrix_to_rot6d(m)), m, atol=1e-12)


def test_forward_kinematics_closed_forms():
  rest = np.random.default_rng(2).normal(size=(22, 3))
  trans = np.array([[1.0, 2.0, 3.0]])
  ident = np.tile(np.eye(3), (1, 22, 1, 1))
  np.testing.assert_allclose(sf.forward_kinematics(ident, trans, rest)[0], rest + trans[0])
  # Bend joint 18 (left elbow): only its child 20 moves, rotating about the elbow.
  rots = ident.copy()
  turn = Rotation.from_rotvec([0.0, 0.0, 0.7]).as_matrix()
  rots[0, 18] = turn
  out = sf.forward_kinematics(rots, trans, rest)[0]
  moved = [j for j in range(22) if not np.allclose(out[j], rest[j] + trans[0])]
  assert moved == [20]
  np.testing.assert_allclose(out[20], rest[18] + trans[0] + turn @ (rest[20] - rest[18]))
  with pytest.raises(ValueError, match='rest_joints'):
    sf.forward_kinematics(rots, trans, rest[:21])


def test_amass_resampling_and_errors():
  rng = np.random.default_rng(3)
  poses = rng.normal(0, 0.3, (120, 156))
  trans = rng.normal(size=(120, 3))
  feats = sf.amass_to_features(poses, trans, source_fps=120.0, fps=30.0)
  assert feats.shape == (30, 135)
  np.testing.assert_allclose(feats[:, 0], trans[::4, 2])
  with pytest.raises(ValueError, match='135'):
    sf.features_to_rotations(np.zeros((3, 263)))
