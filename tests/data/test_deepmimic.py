"""DeepMimic mocap -> joints: forward kinematics against pybullet's own, resampling, mirror."""

import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxvision.data import deepmimic as dm
from jaxvision.geometry import quaternions as quat

pb = pytest.importorskip('pybullet')


def _pybullet_positions(frames):
  """Joint positions computed by pybullet's multibody FK (an independent implementation)."""
  client = pb.connect(pb.DIRECT)
  try:
    body = pb.loadURDF(os.path.join(dm.data_path(), 'humanoid', 'humanoid.urdf'),
                       globalScaling=0.25, useFixedBase=True,
                       flags=pb.URDF_MAINTAIN_LINK_ORDER, physicsClientId=client)
    index = {pb.getJointInfo(body, j, physicsClientId=client)[1].decode(): j
             for j in range(pb.getNumJoints(body, physicsClientId=client))}
    parts = dm.split_frame(frames)
    out = np.zeros((len(frames), len(dm.JOINTS), 3))
    for i in range(len(frames)):
      w, x, y, z = parts['root_rot'][i]
      pb.resetBasePositionAndOrientation(body, parts['root_pos'][i], [x, y, z, w],
                                         physicsClientId=client)
      for name in dm.MOCAP_JOINTS:
        v = parts[name][i]
        target = [v[0]] if name in dm.REVOLUTE else [v[1], v[2], v[3], v[0]]
        pb.resetJointStateMultiDof(body, index[name], target, physicsClientId=client)
      for k, (_, link, offset) in enumerate(dm.JOINTS):
        if link == 'root':
          pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=client)
        else:
          state = pb.getLinkState(body, index[link], computeForwardKinematics=True,
                                  physicsClientId=client)
          pos, orn = state[4], state[5]
        out[i, k] = pb.multiplyTransforms(pos, orn, list(np.array(offset) * 0.25), [0, 0, 0, 1])[0]
    return out
  finally:
    pb.disconnect(client)


@pytest.mark.parametrize('clip', ['cartwheel', 'walker_turn_left0', 'getup_faceup'])
def test_forward_kinematics_matches_pybullet(clip):
  frames, _ = dm.read_mocap(dm.clip_files()[clip])
  frames = frames[::7]
  ours = dm.positions_from_frames(frames)
  ref = _pybullet_positions(frames)
  np.testing.assert_allclose(ours, ref, atol=1e-5)   # pybullet works in float32


def test_all_twenty_clips_are_found_and_have_plausible_bodies():
  files = dm.clip_files()
  assert len(files) == 20
  for name in files:
    p = dm.clip_positions(name)
    assert p.shape[1:] == (18, 3) and len(p) >= 15
    assert np.all(np.isfinite(p))
    bones = np.linalg.norm(p[:, 1:] - p[:, list(dm.skeleton().parents[1:])], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(dm.skeleton().bone_lengths[1:],
                                                      bones.shape), atol=1e-9)


def test_resample_keeps_key_frames_and_duration():
  frames, _ = dm.read_mocap(dm.clip_files()['walk'])   # 30 fps key frames
  same = dm.resample(frames, 1.0 / frames[0, 0])
  np.testing.assert_allclose(same[:, 1:4], frames[:, 1:4], atol=1e-9)
  np.testing.assert_allclose(np.abs(np.sum(same[:, 4:8] * quat.qnormalize(frames[:, 4:8]), -1)), 1.0,
                             atol=1e-9)
  at20 = dm.resample(frames, 20.0)
  duration = frames[:-1, 0].sum()
  assert len(at20) == int(np.floor(duration * 20 + 1e-6)) + 1
  # Half-way between key frames 0 and 1 the root is their average.
  mid = dm.resample(frames[:2], 2.0 / frames[0, 0])
  np.testing.assert_allclose(mid[1, 1:4], frames[:2, 1:4].mean(0), atol=1e-12)


def test_quaternion_helpers_match_scipy():
  rng = np.random.default_rng(0)
  a, b = quat.qnormalize(rng.normal(size=(50, 4))), quat.qnormalize(rng.normal(size=(50, 4)))
  v = rng.normal(size=(50, 3))

  def scipy_rot(q):
    return Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], -1))

  np.testing.assert_allclose(quat.qrot(a, v), scipy_rot(a).apply(v), atol=1e-12)
  np.testing.assert_allclose(quat.qrot(quat.qmul(a, b), v), scipy_rot(a).apply(scipy_rot(b).apply(v)),
                             atol=1e-12)
  np.testing.assert_allclose(quat.quat_to_matrix(a), scipy_rot(a).as_matrix(), atol=1e-12)
  np.testing.assert_allclose(quat.cont6d_to_matrix(quat.quat_to_cont6d(a)),
                             scipy_rot(a).as_matrix(), atol=1e-12)
  u = rng.normal(size=(50, 3))
  q = quat.qbetween(u, v)
  rotated = quat.qrot(q, u)
  np.testing.assert_allclose(rotated / np.linalg.norm(rotated, axis=-1, keepdims=True),
                             v / np.linalg.norm(v, axis=-1, keepdims=True), atol=1e-12)
  # Opposite vectors: a finite half turn (the reference returns NaN here).
  q = quat.qbetween(np.array([[0.0, 0.0, 1.0]]), np.array([[0.0, 0.0, -1.0]]))
  np.testing.assert_allclose(quat.qrot(q, np.array([[0.0, 0.0, 1.0]])), [[0.0, 0.0, -1.0]],
                             atol=1e-12)


def test_mirror_swaps_sides_and_negates_x():
  p = dm.clip_positions('walker_turn_left0')
  m = dm.mirror(p)
  r, l = dm.JOINT_NAMES.index('right_wrist'), dm.JOINT_NAMES.index('left_wrist')
  np.testing.assert_allclose(m[:, r], p[:, l] * np.array([-1.0, 1.0, 1.0]))
  np.testing.assert_allclose(dm.mirror(m), p)
  # The left turn ends at +x (the character's left); its mirror at -x.
  assert p[-1, 0, 0] > 0.1 and m[-1, 0, 0] < -0.1


def test_bad_inputs_are_named(tmp_path):
  with pytest.raises(KeyError, match='unknown DeepMimic clip'):
    dm.clip_positions('moonwalk')
  bad = tmp_path / 'bad.txt'
  bad.write_text('{"Loop": "none", "Frames": [[0.1, 0, 0]]}')
  with pytest.raises(ValueError, match='44 numbers'):
    dm.read_mocap(str(bad))
