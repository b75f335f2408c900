"""HumanML3D's redundant motion features for any skeleton, and `recover_from_ric`.

Guo et al. 2022 (HumanML3D, `motion_process.py::process_file`) encode a motion of T
frames and J joints as T-1 frames of

  [root rotation velocity about y (1) | root linear velocity in xz (2) | root height (1)
   | RIC joint positions (3(J-1)) | 6D joint rotations (6(J-1)) | local joint
   velocities (3J) | foot contacts (4)]

which is 263 numbers per frame for the 22-joint SMPL skeleton.  RIC ("rotation-
invariant coordinates") are the joints with the root's xz removed and the root's
heading undone.  The root rotation velocity is the ARCSIN OF THE y COMPONENT of the
frame-to-frame heading quaternion, i.e. half the heading change; `recover_root_rot_pos`
integrates it back as the half-angle of a quaternion (cos a, 0, sin a, 0).

Same as the reference, except: (1) the skeleton is a parameter (`KinematicTree`);
(2) skeleton retargeting (`uniform_skeleton`) is skipped, since one dataset here uses
one skeleton; (3) the heading-velocity quaternion is sign-fixed to w >= 0 before the
arcsin, so a heading crossing +-180 degrees does not jump (the reference can return
pi - a there, for spins and cartwheels).

`recover_from_ric` works on numpy and jax arrays alike.
"""

from __future__ import annotations

import numpy as np

from jaxvision.data.kinematics import KinematicTree, inverse_kinematics
from jaxvision.geometry import quaternions as quat


def feature_dim(num_joints: int) -> int:
  return 4 + 3 * (num_joints - 1) + 6 * (num_joints - 1) + 3 * num_joints + 4


def num_joints_from_dim(dim: int) -> int:
  """Inverts `feature_dim` (263 -> 22)."""
  j, rem = divmod(dim - 8 + 9, 12)
  if rem or j < 2:
    raise ValueError(f'{dim} is not a HumanML3D-style feature size (4 + 12J - 9 + 4)')
  return j


def feature_slices(num_joints: int) -> dict[str, slice]:
  """Where each part of the layout lives in the feature vector."""
  j = num_joints
  bounds, start = {}, 0
  for name, size in (('root_rot_velocity', 1), ('root_linear_velocity', 2), ('root_y', 1),
                     ('ric', 3 * (j - 1)), ('rot6d', 6 * (j - 1)), ('local_velocity', 3 * j),
                     ('foot_contact', 4)):
    bounds[name] = slice(start, start + size)
    start += size
  return bounds


def canonicalize(positions, tree: KinematicTree):
  """Floor at y=0, first root at xz=0, first frame facing +z (HumanML3D's process_file)."""
  positions = np.asarray(positions, dtype=np.float64).copy()
  positions[..., 1] -= positions.min(axis=(0, 1))[1]
  positions -= positions[0, 0] * np.array([1.0, 0.0, 1.0])
  r_hip, l_hip, r_sdr, l_sdr = tree.face_joints
  first = positions[0]
  across = (first[r_hip] - first[l_hip]) + (first[r_sdr] - first[l_sdr])
  across = across / np.linalg.norm(across)
  forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
  forward = forward / np.linalg.norm(forward)
  root_quat = quat.qbetween(forward, np.array([0.0, 0.0, 1.0]))
  return quat.qrot(np.broadcast_to(root_quat, positions.shape[:-1] + (4,)), positions)


def foot_contacts(positions, tree: KinematicTree, threshold: float):
  """(T-1, 2) each for left and right: squared displacement below `threshold`."""
  def detect(ids):
    d = positions[1:, list(ids)] - positions[:-1, list(ids)]
    return (np.sum(d ** 2, axis=-1) < threshold).astype(np.float64)
  return detect(tree.feet_left), detect(tree.feet_right)


def extract_features(positions, tree: KinematicTree, *, feet_threshold: float = 0.002,
                     canonical: bool = True):
  """Features (T-1, D) and the canonical global positions (T, J, 3) they encode.

  `positions` are joint positions (T, J, 3), y up, in metres, at the dataset's frame
  rate (HumanML3D: 20 fps, `feet_threshold` 0.002).  With `canonical=False` the
  positions are taken as already canonicalised.
  """
  positions = np.asarray(positions, dtype=np.float64)
  if positions.ndim != 3 or positions.shape[1:] != (tree.num_joints, 3):
    raise ValueError(f'positions must be (T, {tree.num_joints}, 3), got {positions.shape}')
  if len(positions) < 2:
    raise ValueError(f'a motion needs at least 2 frames, got {len(positions)}')
  if not np.all(np.isfinite(positions)):
    raise ValueError('positions contain NaN or inf')
  if canonical:
    positions = canonicalize(positions, tree)
  global_positions = positions.copy()
  feet_l, feet_r = foot_contacts(positions, tree, feet_threshold)

  quats = inverse_kinematics(tree, positions, smooth_forward=True)
  cont6d = quat.quat_to_cont6d(quats)
  r_rot = quats[:, 0]
  velocity = quat.qrot(r_rot[1:], positions[1:, 0] - positions[:-1, 0])
  r_velocity = quat.qmul(r_rot[1:], quat.qinv(r_rot[:-1]))
  r_velocity = np.where(r_velocity[:, :1] < 0, -r_velocity, r_velocity)

  ric = positions.copy()
  ric[..., 0] -= ric[:, 0:1, 0]
  ric[..., 2] -= ric[:, 0:1, 2]
  ric = quat.qrot(np.repeat(r_rot[:, None], ric.shape[1], axis=1), ric)

  root_y = ric[:, 0, 1:2]
  rot_vel = np.arcsin(np.clip(r_velocity[:, 2:3], -1.0, 1.0))
  lin_vel = velocity[:, [0, 2]]
  root_data = np.concatenate([rot_vel, lin_vel, root_y[:-1]], axis=-1)
  rot_data = cont6d[:, 1:].reshape(len(cont6d), -1)
  ric_data = ric[:, 1:].reshape(len(ric), -1)
  local_vel = quat.qrot(np.repeat(r_rot[:-1, None], global_positions.shape[1], axis=1),
                        global_positions[1:] - global_positions[:-1])
  local_vel = local_vel.reshape(len(local_vel), -1)
  data = np.concatenate([root_data, ric_data[:-1], rot_data[:-1], local_vel, feet_l, feet_r],
                        axis=-1)
  return data, global_positions


def _xp(x):
  if isinstance(x, np.ndarray):
    return np
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return jnp


def _qrot_y(cos, sin, v, xp):
  """Rotates v (..., 3) by the quaternion (cos, 0, sin, 0), written out."""
  # q = (w, 0, s, 0): rotation about y by angle 2a with w = cos a, s = sin a.
  c2 = cos * cos - sin * sin
  s2 = 2.0 * cos * sin
  x, y, z = v[..., 0], v[..., 1], v[..., 2]
  return xp.stack([c2 * x + s2 * z, y, -s2 * x + c2 * z], axis=-1)


def recover_root_rot_pos(data):
  """Root heading (cos a, sin a) of (cos a, 0, sin a, 0) and root positions (..., T, 3)."""
  xp = _xp(data)
  rot_vel = data[..., 0]
  ang = xp.concatenate([xp.zeros_like(rot_vel[..., :1]), rot_vel[..., :-1]], axis=-1)
  ang = xp.cumsum(ang, axis=-1)
  cos, sin = xp.cos(ang), xp.sin(ang)
  vel = xp.stack([data[..., :-1, 1], xp.zeros_like(data[..., :-1, 1]), data[..., :-1, 2]], -1)
  vel = xp.concatenate([xp.zeros_like(vel[..., :1, :]), vel], axis=-2)
  # Undo the heading: rotate by the inverse quaternion (cos, 0, -sin, 0).
  vel = _qrot_y(cos, -sin, vel, xp)
  pos = xp.cumsum(vel, axis=-2)
  pos = xp.stack([pos[..., 0], data[..., 3], pos[..., 2]], axis=-1)
  return (cos, sin), pos


def recover_from_ric(data, joints_num: int):
  """Joint positions (..., T, J, 3) from HumanML3D-style features (..., T, D)."""
  xp = _xp(data)
  expected = feature_dim(joints_num)
  if data.shape[-1] != expected:
    raise ValueError(f'features have {data.shape[-1]} channels; {joints_num} joints need '
                     f'{expected}')
  (cos, sin), r_pos = recover_root_rot_pos(data)
  local = data[..., 4:(joints_num - 1) * 3 + 4]
  local = local.reshape(local.shape[:-1] + (joints_num - 1, 3))
  local = _qrot_y(cos[..., None], -sin[..., None], local, xp)
  local = local + xp.stack([r_pos[..., 0], xp.zeros_like(r_pos[..., 0]), r_pos[..., 2]],
                           axis=-1)[..., None, :]
  return xp.concatenate([r_pos[..., None, :], local], axis=-2)
