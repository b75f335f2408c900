"""Quaternions (w, x, y, z), rotation matrices and the continuous 6D rotation, in numpy.

The conventions are those of the motion-capture tools HumanML3D and FlowMDM build on
(Guo et al. 2022, `common/quaternion.py`): a quaternion is `(w, x, y, z)`, `qmul(q, r)`
is the Hamilton product (apply `r` first, then `q`), `qrot(q, v)` rotates vectors, and
the 6D representation (Zhou et al. 2019) is the first two COLUMNS of the rotation matrix
concatenated, `[R[:, 0], R[:, 1]]`.

`qbetween` differs from the reference in one place: for opposite vectors the reference
returns NaN (its `w` and cross product both vanish); here it returns a half turn about
an axis perpendicular to both, so a character facing exactly backwards stays finite.
"""

from __future__ import annotations

import numpy as np


def _check(q, n, what):
  q = np.asarray(q, dtype=np.float64)
  if q.shape[-1] != n:
    raise ValueError(f'{what} must have a last dimension of {n}, got shape {q.shape}')
  return q


def qnormalize(q):
  q = _check(q, 4, 'quaternion')
  return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qinv(q):
  """Inverse of a unit quaternion (its conjugate)."""
  q = _check(q, 4, 'quaternion')
  return q * np.array([1.0, -1.0, -1.0, -1.0])


def qmul(q, r):
  """Hamilton product q * r (broadcasting)."""
  q, r = _check(q, 4, 'quaternion'), _check(r, 4, 'quaternion')
  w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
  w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
  return np.stack([
      w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
      w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
      w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
      w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
  ], axis=-1)


def qrot(q, v):
  """Rotates vectors `v` (..., 3) by unit quaternions `q` (..., 4) (broadcasting)."""
  q, v = _check(q, 4, 'quaternion'), _check(v, 3, 'vector')
  qvec = q[..., 1:]
  uv = np.cross(qvec, v)
  uuv = np.cross(qvec, uv)
  return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(v0, v1):
  """The shortest-arc unit quaternion rotating direction `v0` onto direction `v1`."""
  v0, v1 = _check(v0, 3, 'vector'), _check(v1, 3, 'vector')
  v0, v1 = np.broadcast_arrays(v0, v1)
  cross = np.cross(v0, v1)
  w = np.linalg.norm(v0, axis=-1) * np.linalg.norm(v1, axis=-1) + np.sum(v0 * v1, axis=-1)
  q = np.concatenate([w[..., None], cross], axis=-1)
  norm = np.linalg.norm(q, axis=-1, keepdims=True)
  degenerate = norm[..., 0] < 1e-12 * np.maximum(
      np.linalg.norm(v0, axis=-1) * np.linalg.norm(v1, axis=-1), 1e-300)
  if np.any(degenerate):
    # Opposite directions: a half turn about any axis perpendicular to v0.
    a = v0[degenerate]
    helper = np.where(np.abs(a[:, :1]) < 0.9 * np.linalg.norm(a, axis=-1, keepdims=True),
                      np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    axis = np.cross(a, helper)
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    q = q.copy()
    q[degenerate] = np.concatenate([np.zeros((len(a), 1)), axis], axis=-1)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
  return q / norm


def qfix(q):
  """Sign-flips quaternions along time (axis 0) so consecutive ones have dot >= 0."""
  q = _check(q, 4, 'quaternion')
  out = q.copy()
  dots = np.sum(q[1:] * q[:-1], axis=-1)
  flips = np.cumsum(dots < 0, axis=0) % 2 == 1
  out[1:][flips] *= -1
  return out


def qslerp(q0, q1, t):
  """Spherical linear interpolation between unit quaternions, `t` in [0, 1]."""
  q0, q1 = qnormalize(q0), qnormalize(q1)
  t = np.asarray(t, dtype=np.float64)[..., None]
  dot = np.sum(q0 * q1, axis=-1, keepdims=True)
  q1 = np.where(dot < 0, -q1, q1)
  dot = np.abs(dot)
  theta = np.arccos(np.clip(dot, -1.0, 1.0))
  sin = np.sin(theta)
  small = sin < 1e-8
  safe = np.where(small, 1.0, sin)
  a = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
  b = np.where(small, t, np.sin(t * theta) / safe)
  return qnormalize(a * q0 + b * q1)


def quat_from_axis_angle(axis, angle):
  axis = _check(axis, 3, 'axis')
  axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
  half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
  return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def quat_to_matrix(q):
  q = qnormalize(q)
  w, x, y, z = np.moveaxis(q, -1, 0)
  m = np.stack([
      1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
      2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
      2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  ], axis=-1)
  return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_cont6d(m):
  """The 6D rotation: first two columns of the matrix, concatenated."""
  m = np.asarray(m, dtype=np.float64)
  if m.shape[-2:] != (3, 3):
    raise ValueError(f'rotation matrices must be (..., 3, 3), got {m.shape}')
  return np.concatenate([m[..., 0], m[..., 1]], axis=-1)


def quat_to_cont6d(q):
  return matrix_to_cont6d(quat_to_matrix(q))


def cont6d_to_matrix(d6):
  """Gram-Schmidt of the two columns back to a rotation matrix."""
  d6 = _check(d6, 6, '6D rotation')
  x = d6[..., :3] / np.linalg.norm(d6[..., :3], axis=-1, keepdims=True)
  z = np.cross(x, d6[..., 3:])
  z = z / np.linalg.norm(z, axis=-1, keepdims=True)
  y = np.cross(z, x)
  return np.stack([x, y, z], axis=-1)
