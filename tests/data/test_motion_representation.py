"""HumanML3D features for any skeleton: recover_from_ric inverts them; closed-form roots."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.data import deepmimic as dm
from jaxvision.data import kinematics as kin
from jaxvision.data import motion_representation as mr


@pytest.fixture(scope='module')
def tree():
  return dm.skeleton()


@pytest.mark.parametrize('clip', ['walk', 'spin', 'cartwheel', 'crawl', 'walker_turn_right1'])
def test_recover_from_ric_reproduces_fk_positions(tree, clip):
  positions = dm.clip_positions(clip)
  feats, canonical = mr.extract_features(positions, tree)
  assert feats.shape == (len(positions) - 1, mr.feature_dim(18)) == (len(positions) - 1, 215)
  rec = mr.recover_from_ric(feats, 18)
  np.testing.assert_allclose(rec, canonical[:-1], atol=1e-9)
  # The canonical motion is the FK motion moved rigidly: same pairwise distances.
  d_fk = np.linalg.norm(positions[:-1, :, None] - positions[:-1, None], axis=-1)
  d_rec = np.linalg.norm(rec[:, :, None] - rec[:, None], axis=-1)
  np.testing.assert_allclose(d_rec, d_fk, atol=1e-9)


def test_recover_from_ric_takes_jax_arrays(tree):
  feats, canonical = mr.extract_features(dm.clip_positions('walk'), tree)
  rec_jax = mr.recover_from_ric(jnp.asarray(feats, jnp.float32), 18)
  np.testing.assert_allclose(np.asarray(rec_jax), canonical[:-1], atol=2e-5)


def test_ik_then_fk_is_lossless_on_positions(tree):
  positions = mr.canonicalize(dm.clip_positions('backflip'), tree)
  quats = kin.inverse_kinematics(tree, positions, smooth_forward=True)
  np.testing.assert_allclose(kin.forward_kinematics(tree, quats, positions[:, 0]), positions,
                             atol=1e-9)


def test_canonical_frame_floor_origin_and_heading(tree):
  _, canonical = mr.extract_features(dm.clip_positions('run'), tree)
  assert abs(canonical[..., 1].min()) < 1e-12
  np.testing.assert_allclose(canonical[0, 0, [0, 2]], 0.0, atol=1e-12)
  r_hip, l_hip, r_sdr, l_sdr = tree.face_joints
  across = canonical[0, r_hip] - canonical[0, l_hip] + canonical[0, r_sdr] - canonical[0, l_sdr]
  assert across[0] < 0 and abs(across[2]) < 1e-9    # right points to -x: the body faces +z


def _rigid_walk_on_circle(tree, turn_per_frame, step, frames=30):
  """A rigid rest-pose body walking a circle: heading += turn, root moves `step` forward."""
  rest = tree.offsets()
  rest_pos = np.zeros_like(rest)
  for chain in tree.chains:
    for a, b in zip(chain[:-1], chain[1:]):
      rest_pos[b] = rest_pos[a] + rest[b]
  rest_pos[:, 1] -= rest_pos[:, 1].min()
  out, root, heading = [], np.zeros(3), 0.0
  for _ in range(frames):
    c, s = np.cos(heading), np.sin(heading)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])   # about +y
    out.append(rest_pos @ rot.T + root)
    root = root + rot @ np.array([0.0, 0.0, step])
    heading += turn_per_frame
  return np.stack(out)


def test_root_velocities_have_closed_forms(tree):
  turn, step = 0.02, 0.03
  positions = _rigid_walk_on_circle(tree, turn, step, frames=400)
  feats, canonical = mr.extract_features(positions, tree)
  sl = mr.feature_slices(18)
  # Heading velocity is HALF the turn angle (arcsin of the quaternion's y).  The
  # heading is Gaussian-smoothed over time (sigma 20 frames), which is unbiased for a
  # constant turn rate away from the ends (within ~3 sigma of an end it lags).
  mid = slice(100, -100)
  np.testing.assert_allclose(feats[mid, sl['root_rot_velocity']], -turn / 2, atol=1e-6)
  # The root moves `step` along heading t; the feature expresses that displacement in
  # the body frame of t+1, which has turned by `turn` since.
  expected = [-step * np.sin(turn), step * np.cos(turn)]
  np.testing.assert_allclose(feats[mid, sl['root_linear_velocity']],
                             np.broadcast_to(expected, (len(feats) - 200, 2)), atol=1e-9)
  np.testing.assert_allclose(mr.recover_from_ric(feats, 18), canonical[:-1], atol=1e-9)
  # A rigid body never changes its pose: the RIC joints are constant (where the
  # smoothed heading is exact).
  ric = feats[mid, sl['ric']]
  np.testing.assert_allclose(ric, np.broadcast_to(ric[:1], ric.shape), atol=1e-9)


def test_heading_crossing_180_degrees_stays_continuous(tree):
  positions = _rigid_walk_on_circle(tree, 0.4, 0.0, frames=40)   # several full turns
  feats, canonical = mr.extract_features(positions, tree)
  assert np.all(np.abs(feats[:, 0]) < 0.3)
  np.testing.assert_allclose(mr.recover_from_ric(feats, 18), canonical[:-1], atol=1e-9)


def test_layout_helpers_and_errors(tree):
  assert mr.num_joints_from_dim(263) == 22 and mr.num_joints_from_dim(215) == 18
  sl = mr.feature_slices(22)
  assert sl['ric'] == slice(4, 67) and sl['rot6d'] == slice(67, 193)
  assert sl['local_velocity'] == slice(193, 259) and sl['foot_contact'] == slice(259, 263)
  with pytest.raises(ValueError, match='not a HumanML3D-style'):
    mr.num_joints_from_dim(100)
  with pytest.raises(ValueError, match='215'):
    mr.recover_from_ric(np.zeros((5, 263)), 18)
  bad = dm.clip_positions('walk')
  bad[3, 2, 1] = np.nan
  with pytest.raises(ValueError, match='NaN'):
    mr.extract_features(bad, tree)
  with pytest.raises(ValueError, match=r'\(T, 18, 3\)'):
    mr.extract_features(np.zeros((10, 17, 3)), tree)
