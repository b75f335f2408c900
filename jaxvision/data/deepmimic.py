"""Real motion capture from the `pybullet` wheel: DeepMimic clips -> joint positions.

`pybullet_data/data/motions/humanoid3d_*.txt` (Peng et al. 2018, DeepMimic) and
`.../walker/*.txt` hold key frames of the humanoid in `pybullet_data/humanoid/
humanoid.urdf`: per frame its duration, the root position (3) and orientation (4,
w x y z), then, in this order, chest, neck, right hip, right knee, right ankle, right
shoulder, right elbow, left hip, left knee, left ankle, left shoulder, left elbow: a
quaternion (w x y z) for spherical joints, an angle about the joint's axis for the
revolute knees and elbows.  The URDF is 4x too large; DeepMimic loads it with
`globalScaling=0.25`, and so does this reader.  The mocap is y-up, the character
faces +x with its right side at +z.

`clip_positions` runs forward kinematics through the URDF's joint origins
(T_child = T_parent * translate(origin) * rotate(joint)), resampled to a target frame
rate by slerp between key frames, and returns 18 joints: the 13 URDF joints plus end
sites at the head (centre of the neck link's sphere), the wrists (the URDF's fixed
wrist joints) and the toes (front bottom edge of the ankle boxes).
`SKELETON` is the matching `KinematicTree` in HumanML3D's canonical frame.

`read_mocap` refuses (`DataFileError` naming the file) what would give NaN joints or
an unbounded resampling: invalid JSON, no `Frames`, ragged or non-numeric frames, fewer
than 2 key frames, NaN/Inf values, negative durations, a zero root or joint quaternion,
and clips longer than `MAX_CLIP_SECONDS` (the shipped clips last 0.8-4.4 s; a 1e9 s
clip would allocate hundreds of GiB).  `resample` bounds its output by `MAX_FRAMES`.
"""

from __future__ import annotations

import functools
import json
import os
import xml.etree.ElementTree as ET

import numpy as np

from jaxvision.data import kinematics
from jaxvision.data.errors import DataFileError
from jaxvision.data.errors import check_array
from jaxvision.data.packaged import packaged_file
from jaxvision.geometry import quaternions as quat

URDF_SCALE = 0.25
MOCAP_JOINTS = ('chest', 'neck', 'right_hip', 'right_knee', 'right_ankle', 'right_shoulder',
                'right_elbow', 'left_hip', 'left_knee', 'left_ankle', 'left_shoulder',
                'left_elbow')
REVOLUTE = ('right_knee', 'right_elbow', 'left_knee', 'left_elbow')

# The 18 joints of the feature skeleton: (name, URDF link it is fixed to, offset in
# that link's frame before scaling).  Joint origins have a zero offset.
JOINTS = (
    ('pelvis', 'root', (0.0, 0.0, 0.0)),
    ('chest', 'chest', (0.0, 0.0, 0.0)),
    ('neck', 'neck', (0.0, 0.0, 0.0)),
    ('head', 'neck', (0.0, 0.7, 0.0)),
    ('right_hip', 'right_hip', (0.0, 0.0, 0.0)),
    ('right_knee', 'right_knee', (0.0, 0.0, 0.0)),
    ('right_ankle', 'right_ankle', (0.0, 0.0, 0.0)),
    ('right_toe', 'right_ankle', (0.534, -0.2, 0.0)),
    ('left_hip', 'left_hip', (0.0, 0.0, 0.0)),
    ('left_knee', 'left_knee', (0.0, 0.0, 0.0)),
    ('left_ankle', 'left_ankle', (0.0, 0.0, 0.0)),
    ('left_toe', 'left_ankle', (0.534, -0.2, 0.0)),
    ('right_shoulder', 'right_shoulder', (0.0, 0.0, 0.0)),
    ('right_elbow', 'right_elbow', (0.0, 0.0, 0.0)),
    ('right_wrist', 'right_wrist', (0.0, 0.0, 0.0)),
    ('left_shoulder', 'left_shoulder', (0.0, 0.0, 0.0)),
    ('left_elbow', 'left_elbow', (0.0, 0.0, 0.0)),
    ('left_wrist', 'left_wrist', (0.0, 0.0, 0.0)),
)
JOINT_NAMES = tuple(j[0] for j in JOINTS)
CHAINS = ((0, 4, 5, 6, 7), (0, 8, 9, 10, 11), (0, 1, 2, 3), (1, 12, 13, 14), (1, 15, 16, 17))
FACE_JOINTS = (4, 8, 12, 15)     # right hip, left hip, right shoulder, left shoulder
FEET_RIGHT, FEET_LEFT = (6, 7), (10, 11)
# Left <-> right joint permutation (for mirroring).
MIRROR = tuple(JOINT_NAMES.index(n.replace('right', 'L').replace('left', 'right')
                                 .replace('L', 'left')) for n in JOINT_NAMES)
# Mocap frame (faces +x, right +z) -> HumanML3D frame (faces +z, left +x).
TO_CANONICAL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
MAX_CLIP_SECONDS = 3600.0
MAX_FRAMES = 1_000_000
_ZERO_QUAT = 1e-6


def data_path() -> str:
  """The `pybullet_data` folder of the installed pybullet wheel."""
  return packaged_file('pybullet_data', '', pip_name='pybullet==3.2.7')


def clip_files() -> dict[str, str]:
  """Clip name -> path, for the 15 humanoid3d clips and the 5 walker clips."""
  root = os.path.join(data_path(), 'data', 'motions')
  out = {}
  for name in sorted(os.listdir(root)):
    if name.startswith('humanoid3d_') and name.endswith('.txt'):
      out[name[len('humanoid3d_'):-4]] = os.path.join(root, name)
  walker = os.path.join(root, 'walker')
  for name in sorted(os.listdir(walker)):
    if name.endswith('.txt'):
      out['walker_' + name[:-4].lstrip('0')] = os.path.join(walker, name)
  return out


@functools.lru_cache(maxsize=None)
def read_urdf(path: str | None = None) -> dict[str, dict]:
  """Joint name -> {parent, child, type, origin (scaled), axis} of the humanoid URDF."""
  path = path or os.path.join(data_path(), 'humanoid', 'humanoid.urdf')
  if not os.path.exists(path):
    raise FileNotFoundError(f'URDF not found: {path}')
  with open(path, 'rb') as f:
    text = f.read().replace(b'\x00', b'')   # the shipped file ends in NUL padding
  root = ET.fromstring(text)
  joints = {}
  for j in root.iter('joint'):
    origin = j.find('origin')
    axis = j.find('axis')
    xyz = origin.get('xyz').split() if origin is not None else ['0', '0', '0']
    joints[j.get('name')] = {
        'parent': j.find('parent').get('link'), 'child': j.find('child').get('link'),
        'type': j.get('type'),
        'origin': np.array([float(v) for v in xyz]) * URDF_SCALE,
        'axis': (np.array([float(v) for v in axis.get('xyz').split()])
                 if axis is not None else np.array([0.0, 0.0, 1.0])),
    }
  return joints


def read_mocap(path: str) -> tuple[np.ndarray, bool]:
  """Key frames (N, 44) and whether the clip loops ('wrap'); see the module docstring."""
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DataFileError(path, f'not valid JSON ({e})') from None
  if not isinstance(data, dict) or 'Frames' not in data:
    raise DataFileError(path, 'a DeepMimic clip is a JSON object with a "Frames" list')
  try:
    frames = np.asarray(data['Frames'], dtype=np.float64)
  except (ValueError, TypeError):
    raise DataFileError(path, '"Frames" must be a list of equal-length lists of numbers'
                        ) from None
  frames = check_array(frames, path, 'Frames', ndim=2)
  if frames.shape[1] != 44 or len(frames) < 2:
    raise DataFileError(path, f'expected at least 2 key frames of 44 numbers, got shape '
                        f'{frames.shape}')
  parts = split_frame(frames)
  if np.any(parts['dt'] < 0):
    raise DataFileError(path, f'negative frame duration at key frame '
                        f'{int(np.argmax(parts["dt"] < 0))}')
  duration = float(np.sum(parts['dt'][:-1]))
  if duration > MAX_CLIP_SECONDS:
    raise DataFileError(path, f'the clip lasts {duration:.6g} s, more than '
                        f'MAX_CLIP_SECONDS = {MAX_CLIP_SECONDS:g}')
  for name in ('root_rot',) + tuple(j for j in MOCAP_JOINTS if j not in REVOLUTE):
    norm = np.linalg.norm(parts[name], axis=-1)
    if np.any(norm < _ZERO_QUAT):
      raise DataFileError(path, f'zero quaternion for {name} at key frame '
                          f'{int(np.argmax(norm < _ZERO_QUAT))}')
  return frames, data.get('Loop', 'none') == 'wrap'


def split_frame(frames: np.ndarray) -> dict[str, np.ndarray]:
  """Key frames (N, 44) -> {'dt', 'root_pos', 'root_rot', <joint>: quat or angle}."""
  out = {'dt': frames[:, 0], 'root_pos': frames[:, 1:4], 'root_rot': frames[:, 4:8]}
  i = 8
  for name in MOCAP_JOINTS:
    n = 1 if name in REVOLUTE else 4
    out[name] = frames[:, i:i + n]
    i += n
  return out


def resample(frames: np.ndarray, fps: float) -> np.ndarray:
  """Key frames at the clip's own rate -> key frames at `fps` (slerp / lerp)."""
  parts = split_frame(frames)
  times = np.concatenate([[0.0], np.cumsum(parts['dt'][:-1])])
  duration = times[-1]
  count = duration * fps + 1
  if not (np.isfinite(count) and count <= MAX_FRAMES) or fps <= 0:
    raise ValueError(f'resampling {duration:.6g} s at {fps} fps gives more than MAX_FRAMES = '
                     f'{MAX_FRAMES} frames (or an invalid rate)')
  t = np.arange(int(np.floor(duration * fps + 1e-6)) + 1) / fps
  idx = np.clip(np.searchsorted(times, t, side='right') - 1, 0, len(times) - 2)
  frac = np.clip((t - times[idx]) / np.maximum(times[idx + 1] - times[idx], 1e-12), 0.0, 1.0)
  out = [np.full((len(t), 1), 1.0 / fps)]
  out.append(parts['root_pos'][idx] + frac[:, None] * (parts['root_pos'][idx + 1] -
                                                       parts['root_pos'][idx]))
  out.append(quat.qslerp(parts['root_rot'][idx], parts['root_rot'][idx + 1], frac))
  for name in MOCAP_JOINTS:
    a, b = parts[name][idx], parts[name][idx + 1]
    out.append(a + frac[:, None] * (b - a) if name in REVOLUTE else quat.qslerp(a, b, frac))
  return np.concatenate(out, axis=-1)


def link_transforms(frames: np.ndarray, urdf: dict | None = None):
  """World (rotation quaternion, position) of every URDF link, per key frame."""
  urdf = urdf or read_urdf()
  parts = split_frame(frames)
  n = len(frames)
  world = {'base': (np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)), np.zeros((n, 3)))}
  world['root'] = (quat.qnormalize(parts['root_rot']), parts['root_pos'])
  pending = [name for name in urdf if name != 'root']
  while pending:
    progressed = False
    for name in list(pending):
      j = urdf[name]
      if j['parent'] not in world:
        continue
      prot, ppos = world[j['parent']]
      pos = ppos + quat.qrot(prot, np.broadcast_to(j['origin'], ppos.shape))
      if j['type'] == 'spherical':
        local = quat.qnormalize(parts[name])
      elif j['type'] == 'revolute':
        local = quat.quat_from_axis_angle(np.broadcast_to(j['axis'], (n, 3)), parts[name][:, 0])
      elif j['type'] == 'fixed':
        local = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
      else:
        raise ValueError(f'URDF joint {name!r} has unsupported type {j["type"]!r}')
      world[j['child']] = (quat.qmul(prot, local), pos)
      pending.remove(name)
      progressed = True
    if not progressed:
      raise ValueError(f'URDF joints {pending} are not connected to the root')
  return world


def positions_from_frames(frames: np.ndarray, urdf: dict | None = None) -> np.ndarray:
  """(N, 18, 3) joint positions in the mocap frame (y up, facing +x)."""
  world = link_transforms(frames, urdf)
  out = []
  for _, link, offset in JOINTS:
    rot, pos = world[link]
    off = np.asarray(offset) * URDF_SCALE
    out.append(pos + quat.qrot(rot, np.broadcast_to(off, pos.shape)))
  return np.stack(out, axis=1)


def clip_positions(name: str, fps: float = 20.0) -> np.ndarray:
  """(T, 18, 3) joint positions of one clip at `fps`, in HumanML3D's axes (y up)."""
  files = clip_files()
  if name not in files:
    raise KeyError(f'unknown DeepMimic clip {name!r}; known: {sorted(files)}')
  frames, _ = read_mocap(files[name])
  return positions_from_frames(resample(frames, fps)) @ TO_CANONICAL.T


def mirror(positions: np.ndarray) -> np.ndarray:
  """Left-right mirror (x -> -x in the canonical frame, left and right joints swapped)."""
  out = np.asarray(positions).copy()
  out[..., 0] *= -1.0
  return out[..., list(MIRROR), :]


def rest_positions() -> np.ndarray:
  """(18, 3) rest pose (all joint rotations identity), canonical frame."""
  frame = np.zeros((1, 44))
  frame[0, 4] = 1.0
  parts_start = 8
  for name in MOCAP_JOINTS:
    if name not in REVOLUTE:
      frame[0, parts_start] = 1.0
    parts_start += 1 if name in REVOLUTE else 4
  return positions_from_frames(frame)[0] @ TO_CANONICAL.T


@functools.lru_cache(maxsize=None)
def skeleton() -> kinematics.KinematicTree:
  """The 18-joint DeepMimic humanoid as a HumanML3D-style kinematic tree."""
  return kinematics.tree_from_rest_pose(
      rest_positions(), CHAINS, face_joints=FACE_JOINTS, feet_right=FEET_RIGHT,
      feet_left=FEET_LEFT, names=JOINT_NAMES)
