"""FlowMDM's Babel motion features (135-d) and SMPL-H body-joint forward kinematics.

Babel sequences are AMASS SMPL-H fits: per frame an axis-angle per joint (`poses`,
156 = 52 x 3) and a root translation (`trans`), z up.  FlowMDM keeps the 22 body joints
and encodes a motion as (TEACH's `Globalvelandy`, rot6d):

  [root height z (1) | root velocity in xy (2) | 22 x 6D rotation (132)] = 135

with the first frame's heading removed ("canonicalize": the first global orientation's
axis-angle, x and y zeroed, plus pi/2 (`offset`), is undone on every frame's global
orientation and on the xy velocities; the first velocity is 0).  The 6D rotation here is
pytorch3d's: the first two ROWS of the matrix (HumanML3D uses the first two columns).

Joint positions need the body's rest joints (from the SMPL-H model, which is licensed
and not shipped): `forward_kinematics(rots, trans, rest_joints)` poses them along
`SMPL_PARENTS` (G_j = G_parent [R_j | J_j - J_parent]; joint = translation of G_j +
trans), e.g. for PJ / AUJ on Babel.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
NUM_JOINTS = 22
FEATURE_DIM = 3 + 6 * NUM_JOINTS


def matrix_to_rot6d(m):
  m = np.asarray(m)
  return m[..., :2, :].reshape(m.shape[:-2] + (6,))


def rot6d_to_matrix(d6):
  d6 = np.asarray(d6, np.float64)
  a1, a2 = d6[..., :3], d6[..., 3:]
  b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
  b2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
  b2 = b2 / np.linalg.norm(b2, axis=-1, keepdims=True)
  return np.stack([b1, b2, np.cross(b1, b2)], axis=-2)


def axis_angle_to_matrix(aa):
  aa = np.asarray(aa, np.float64)
  return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(aa.shape[:-1] + (3, 3))


def first_heading(global_orient, offset: bool = True):
  """The vertical rotation FlowMDM removes: z part of frame 0's axis-angle (+ pi/2)."""
  rot = Rotation.from_matrix(np.asarray(global_orient[0], np.float64)).as_rotvec()
  rot[:2] = 0.0
  if offset:
    rot[2] += np.pi / 2
  return Rotation.from_rotvec(rot).as_matrix()


def rotations_to_features(rots, trans, *, canonicalize: bool = True, offset: bool = True):
  """rots (T, 22, 3, 3) local rotation matrices, trans (T, 3) -> features (T, 135)."""
  rots, trans = np.asarray(rots, np.float64), np.asarray(trans, np.float64)
  if rots.shape[1:] != (NUM_JOINTS, 3, 3) or trans.shape != (len(rots), 3):
    raise ValueError(f'expected rots (T, 22, 3, 3) and trans (T, 3), got {rots.shape} and '
                     f'{trans.shape}')
  vel = np.concatenate([np.zeros((1, 2)), np.diff(trans[:, :2], axis=0)], axis=0)
  if canonicalize:
    r = first_heading(rots[:, 0], offset)
    rots = rots.copy()
    rots[:, 0] = np.einsum('kj,tkl->tjl', r, rots[:, 0])        # R^T G
    vel = vel @ r[:2, :2]                                       # (R^T v) in xy
  feats = np.concatenate([trans[:, 2:3], vel, matrix_to_rot6d(rots).reshape(len(rots), -1)],
                         axis=-1)
  return feats


def amass_to_features(poses, trans, *, source_fps: float, fps: float = 30.0, **kwargs):
  """AMASS `poses` (T, >= 66 axis-angle) and `trans` at `source_fps` -> features at `fps`."""
  poses, trans = np.asarray(poses), np.asarray(trans)
  idx = np.round(np.arange(0, len(poses) * fps / source_fps) * source_fps / fps).astype(int)
  idx = idx[idx < len(poses)]
  rots = axis_angle_to_matrix(poses[idx, :3 * NUM_JOINTS].reshape(len(idx), NUM_JOINTS, 3))
  return rotations_to_features(rots, trans[idx], **kwargs)


def features_to_rotations(features):
  """Inverse of `rotations_to_features` (canonical frame): rots (T, 22, 3, 3), trans (T, 3)."""
  features = np.asarray(features, np.float64)
  if features.shape[-1] != FEATURE_DIM:
    raise ValueError(f'Babel features have {FEATURE_DIM} channels, got {features.shape[-1]}')
  xy = np.cumsum(features[..., 1:3], axis=-2)
  xy = xy - xy[..., :1, :]
  trans = np.concatenate([xy, features[..., 0:1]], axis=-1)
  rots = rot6d_to_matrix(features[..., 3:].reshape(features.shape[:-1] + (NUM_JOINTS, 6)))
  return rots, trans


def forward_kinematics(rots, trans, rest_joints, parents=SMPL_PARENTS):
  """Posed joints (..., T, J, 3) from local rotations, root translation and rest joints."""
  rots, trans = np.asarray(rots, np.float64), np.asarray(trans, np.float64)
  rest = np.asarray(rest_joints, np.float64)
  if rest.shape != (len(parents), 3):
    raise ValueError(f'rest_joints must be ({len(parents)}, 3), got {rest.shape}')
  glob = [None] * len(parents)
  pos = [None] * len(parents)
  for j, p in enumerate(parents):
    if p < 0:
      glob[j] = rots[..., j, :, :]
      pos[j] = np.broadcast_to(rest[j], trans.shape) + trans
    else:
      glob[j] = glob[p] @ rots[..., j, :, :]
      pos[j] = pos[p] + np.einsum('...ij,j->...i', glob[p], rest[j] - rest[p])
  return np.stack(pos, axis=-2)


def recover_joints(features, rest_joints):
  """Joint positions of Babel features (canonical frame, z up)."""
  rots, trans = features_to_rotations(features)
  return forward_kinematics(rots, trans, rest_joints)


def window_features(poses, trans, start: int, stop: int) -> np.ndarray:
  """Upstream's per-window features: the 135-d Globalvelandy/rot6d features of frames
  [start, stop) alone (heading of the window's first frame removed, its first root
  velocity 0), from SMPL-H axis-angle `poses` and `trans`."""
  n = NUM_JOINTS
  rots = axis_angle_to_matrix(
      np.asarray(poses[start:stop, :3 * n], np.float64).reshape(stop - start, n, 3))
  return rotations_to_features(rots, trans[start:stop]).astype(np.float32)
