"""jaxvision.geometry.quaternions against scipy's rotations ((w, x, y, z) vs scipy's
(x, y, z, w) order) and the conventions in its docstring."""

import numpy as np
from scipy.spatial.transform import Rotation

from jaxvision.geometry import quaternions as qt


def _scipy(q):
  return Rotation.from_quat(np.concatenate([q[..., 1:], q[..., :1]], -1))


def _random_q(rng, n):
  return qt.qnormalize(rng.normal(size=(n, 4)))


def test_matrix_rotation_and_product_match_scipy():
  rng = np.random.default_rng(0)
  q, r, v = _random_q(rng, 16), _random_q(rng, 16), rng.normal(size=(16, 3))
  np.testing.assert_allclose(qt.quat_to_matrix(q), _scipy(q).as_matrix(), atol=1e-12)
  np.testing.assert_allclose(qt.qrot(q, v), _scipy(q).apply(v), atol=1e-12)
  # qmul(q, r): apply r first, then q.
  np.testing.assert_allclose(qt.quat_to_matrix(qt.qmul(q, r)),
                             (_scipy(q) * _scipy(r)).as_matrix(), atol=1e-12)
  np.testing.assert_allclose(qt.qrot(qt.qmul(q, qt.qinv(q)), v), v, atol=1e-12)


def test_axis_angle_between_and_cont6d():
  rng = np.random.default_rng(1)
  axis = rng.normal(size=(8, 3))
  axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
  angle = rng.uniform(-np.pi, np.pi, 8)
  q = qt.quat_from_axis_angle(axis, angle)
  np.testing.assert_allclose(qt.quat_to_matrix(q),
                             Rotation.from_rotvec(axis * angle[:, None]).as_matrix(), atol=1e-12)
  v0, v1 = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
  b = qt.qbetween(v0, v1)
  rotated = qt.qrot(b, v0)
  np.testing.assert_allclose(rotated / np.linalg.norm(rotated, axis=-1, keepdims=True),
                             v1 / np.linalg.norm(v1, axis=-1, keepdims=True), atol=1e-9)
  # Opposite vectors: a finite half turn (the reference gives NaN).
  half = qt.qbetween(np.array([[1.0, 0, 0]]), np.array([[-1.0, 0, 0]]))
  np.testing.assert_allclose(qt.qrot(half, np.array([[1.0, 0, 0]])), [[-1, 0, 0]], atol=1e-12)
  m = qt.quat_to_matrix(q)
  d6 = qt.matrix_to_cont6d(m)
  np.testing.assert_allclose(d6, np.concatenate([m[..., :, 0], m[..., :, 1]], -1), atol=1e-12)
  np.testing.assert_allclose(qt.cont6d_to_matrix(d6), m, atol=1e-9)
  np.testing.assert_allclose(qt.quat_to_cont6d(q), d6, atol=1e-12)


def test_slerp_and_fix():
  rng = np.random.default_rng(2)
  q0, q1 = _random_q(rng, 1)[0], _random_q(rng, 1)[0]
  mid = qt.qslerp(q0, q1, 0.5)
  # Slerp halfway: equal angles to both ends.
  ang = lambda a, b: (_scipy(a).inv() * _scipy(b)).magnitude()
  assert np.isclose(ang(q0, mid), ang(mid, q1), atol=1e-9)
  np.testing.assert_allclose(np.abs(qt.qslerp(q0, q1, 0.0) @ q0), 1.0, atol=1e-9)
  seq = np.stack([q0, -q0, q0])   # sign flips of the same rotation
  fixed = qt.qfix(seq)
  assert np.all(np.sum(fixed[1:] * fixed[:-1], -1) > 0)
