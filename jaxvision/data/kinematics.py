"""Kinematic trees, inverse and forward kinematics in HumanML3D's conventions (numpy).

HumanML3D (Guo et al. 2022, `common/skeleton.py`) describes a skeleton by kinematic
CHAINS (lists of joint indices, each starting at the root or at a branching joint) and
by RAW OFFSETS: the unit direction of every bone in the rest pose, in a frame where y
is up, the character faces +z and its left is +x.  Joint rotations are stored at the
CHILD joint of each bone, and every chain starts from the ROOT rotation, also a chain
that branches off mid-body (its first bone's rotation is relative to the root, not to
the branching joint).  Inverse and forward kinematics below follow exactly that, so the
6D rotation features of `motion_representation` mean what they mean in HumanML3D, for
any skeleton.

`inverse_kinematics` differs in one place: the reference unpacks `face_joints` as
(l_hip, r_hip, ...) inside its IK while its callers pass (r_hip, l_hip, ...), so its
across-the-body vector is (left hip - right hip) + (right shoulder - left shoulder).
Here both terms are right minus left, the same formula its `process_file` uses.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from jaxvision.geometry import quaternions as quat


@dataclasses.dataclass(frozen=True)
class KinematicTree:
  """A skeleton: chains, unit rest bone directions, and the joints features need.

  chains:       e.g. ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), ...); the root is joint 0.
  raw_offsets:  (J, 3) unit rest directions of the bone ending at each joint (row 0
                unused), in the y-up, facing-+z, left-+x frame.
  face_joints:  (right hip, left hip, right shoulder, left shoulder).
  feet_right, feet_left: the joints whose velocity decides foot contact (two each).
  bone_lengths: (J,) rest lengths (row 0 unused); forward kinematics scales
                raw_offsets by them.
  names:        optional joint names.
  """
  chains: tuple[tuple[int, ...], ...]
  raw_offsets: np.ndarray
  face_joints: tuple[int, int, int, int]
  feet_right: tuple[int, int]
  feet_left: tuple[int, int]
  bone_lengths: np.ndarray
  names: tuple[str, ...] = ()

  def __post_init__(self):
    j = len(self.raw_offsets)
    seen = {0}
    for chain in self.chains:
      if chain[0] not in seen:
        raise ValueError(f'chain {chain} starts at joint {chain[0]}, which no earlier chain '
                         'reaches (chains must start at the root or a joint already placed)')
      for a in chain[1:]:
        if a in seen:
          raise ValueError(f'joint {a} appears in two chains')
        seen.add(a)
    if seen != set(range(j)):
      raise ValueError(f'chains cover joints {sorted(seen)} but raw_offsets has {j} rows')
    for name, idx in (('face_joints', self.face_joints), ('feet_right', self.feet_right),
                      ('feet_left', self.feet_left)):
      if any(not 0 <= i < j for i in idx):
        raise ValueError(f'{name}={idx} names a joint outside 0..{j - 1}')
    if np.shape(self.bone_lengths) != (j,):
      raise ValueError(f'bone_lengths must have shape ({j},), got {np.shape(self.bone_lengths)}')

  @property
  def num_joints(self) -> int:
    return len(self.raw_offsets)

  @property
  def parents(self) -> tuple[int, ...]:
    parents = [-1] * self.num_joints
    for chain in self.chains:
      for a, b in zip(chain[:-1], chain[1:]):
        parents[b] = a
    return tuple(parents)

  def offsets(self) -> np.ndarray:
    """(J, 3) rest bone vectors: raw directions times lengths."""
    return np.asarray(self.raw_offsets) * np.asarray(self.bone_lengths)[:, None]


def tree_from_rest_pose(rest_positions, chains, *, face_joints, feet_right, feet_left,
                        names=()) -> KinematicTree:
  """Builds a tree whose raw offsets and bone lengths are those of a rest pose.

  `rest_positions` (J, 3) must already be in the y-up, facing-+z, left-+x frame.
  """
  rest = np.asarray(rest_positions, dtype=np.float64)
  parents = [-1] * len(rest)
  for chain in chains:
    for a, b in zip(chain[:-1], chain[1:]):
      parents[b] = a
  vec = np.zeros_like(rest)
  for j, p in enumerate(parents):
    if p >= 0:
      vec[j] = rest[j] - rest[p]
  lengths = np.linalg.norm(vec, axis=-1)
  if np.any(lengths[1:] < 1e-9):
    raise ValueError(f'zero-length bone(s) at joints {np.nonzero(lengths[1:] < 1e-9)[0] + 1}')
  raw = np.zeros_like(vec)
  raw[1:] = vec[1:] / lengths[1:, None]
  return KinematicTree(chains=tuple(tuple(c) for c in chains), raw_offsets=raw,
                       face_joints=tuple(face_joints), feet_right=tuple(feet_right),
                       feet_left=tuple(feet_left), bone_lengths=lengths, names=tuple(names))


def forward_direction(positions, face_joints):
  """(T, 3) unit horizontal facing directions from hips and shoulders."""
  r_hip, l_hip, r_sdr, l_sdr = face_joints
  across = (positions[:, r_hip] - positions[:, l_hip]) + (positions[:, r_sdr] - positions[:, l_sdr])
  across = across / np.linalg.norm(across, axis=-1, keepdims=True)
  forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
  return forward


def inverse_kinematics(tree: KinematicTree, positions, *, smooth_forward: bool = False):
  """Local joint quaternions (T, J, 4) that rotate raw offsets onto the bones of `positions`.

  The root quaternion of frame t rotates the facing direction onto +z (frame 0's is
  forced to identity, as in HumanML3D).  `smooth_forward` Gaussian-filters the facing
  direction over time (sigma 20 frames) before that, as HumanML3D does for its features.
  """
  positions = np.asarray(positions, dtype=np.float64)
  if positions.ndim != 3 or positions.shape[1:] != (tree.num_joints, 3):
    raise ValueError(f'positions must be (T, {tree.num_joints}, 3), got {positions.shape}')
  forward = forward_direction(positions, tree.face_joints)
  if smooth_forward:
    forward = ndimage.gaussian_filter1d(forward, 20, axis=0, mode='nearest')
  forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
  root_quat = quat.qbetween(forward, np.array([0.0, 0.0, 1.0]))
  root_quat[0] = np.array([1.0, 0.0, 0.0, 0.0])
  quats = np.zeros(positions.shape[:-1] + (4,))
  quats[..., 0] = 1.0
  quats[:, 0] = root_quat
  raw = np.asarray(tree.raw_offsets, dtype=np.float64)
  for chain in tree.chains:
    rot = root_quat
    for a, b in zip(chain[:-1], chain[1:]):
      bone = positions[:, b] - positions[:, a]
      bone = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
      rot_uv = quat.qbetween(np.broadcast_to(raw[b], bone.shape), bone)
      local = quat.qmul(quat.qinv(rot), rot_uv)
      quats[:, b] = local
      rot = quat.qmul(rot, local)
  return quats


def forward_kinematics(tree: KinematicTree, quats, root_positions, offsets=None):
  """Joint positions (T, J, 3) from local quaternions (T, J, 4), HumanML3D's way."""
  quats = np.asarray(quats, dtype=np.float64)
  root_positions = np.asarray(root_positions, dtype=np.float64)
  offsets = tree.offsets() if offsets is None else np.asarray(offsets, dtype=np.float64)
  joints = np.zeros(quats.shape[:-1] + (3,))
  joints[:, 0] = root_positions
  for chain in tree.chains:
    rot = quats[:, 0]
    for a, b in zip(chain[:-1], chain[1:]):
      rot = quat.qmul(rot, quats[:, b])
      joints[:, b] = quat.qrot(rot, np.broadcast_to(offsets[b], joints[:, b].shape)) + joints[:, a]
  return joints
