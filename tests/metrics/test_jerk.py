"""PJ / AUJ on motions whose jerk is known by hand."""

import numpy as np
import pytest

from jaxvision.metrics import jerk


def _cubic(frames, direction, scale=1.0):
  """One joint at scale * t^3 / 6 along `direction`: its third difference is `scale`."""
  t = np.arange(frames, dtype=np.float64)
  return (scale * t ** 3 / 6)[:, None] * np.asarray(direction, np.float64)[None, :]


def test_constant_jerk_is_l1_over_xyz_then_max_over_joints():
  joint_a = _cubic(10, [1.0, 1.0, 1.0])          # L1 jerk 3 every frame
  joint_b = _cubic(10, [0.0, -2.0, 0.0])          # L1 jerk 2
  positions = np.stack([joint_a, joint_b], axis=1)[None]   # (1, 10, 2, 3)
  np.testing.assert_allclose(jerk.frame_jerk(positions, [10]), np.full((1, 7), 3.0))
  # A rigid translation at constant speed or acceleration adds no jerk.
  t = np.arange(10.0)[:, None, None]
  moved = positions + 5.0 * t + 0.5 * t ** 2
  np.testing.assert_allclose(jerk.frame_jerk(moved, [10]), np.full((1, 7), 3.0), atol=1e-9)


def test_lengths_zero_the_padded_frames_and_the_mean_counts_them():
  a = _cubic(12, [1.0, 0.0, 0.0], scale=2.0)[None, :, None]   # jerk 2
  b = _cubic(12, [0.0, 0.0, 1.0], scale=4.0)[None, :, None]   # jerk 4
  positions = np.concatenate([a, b])
  per = jerk.frame_jerk(positions, [12, 7])
  np.testing.assert_allclose(per[0], 2.0)
  np.testing.assert_allclose(per[1], [4, 4, 4, 4, 0, 0, 0, 0, 0])   # 7 - 3 = 4 valid frames
  curve = jerk.jerk_curve(positions, [12, 7])
  np.testing.assert_allclose(curve, [3, 3, 3, 3, 1, 1, 1, 1, 1])
  assert jerk.peak_jerk(curve) == pytest.approx(3.0)
  np.testing.assert_allclose(jerk.area_under_jerk(curve, 1.0), 4 * 2.0 + 5 * 0.0)
  np.testing.assert_allclose(jerk.area_under_jerk(curve, 2.0), 4 * 1.0 + 5 * 1.0)


def test_a_position_jump_gives_the_third_difference_stencil():
  # A jump of h at frame k: the third difference of a step is h * (1, -2, 1) on the
  # three frames before it, i.e. |jerk| = h, 2h, h (checked against the definition too).
  h, k, n = 0.3, 6, 12
  x = np.where(np.arange(n) >= k, h, 0.0)
  positions = np.zeros((1, n, 1, 3))
  positions[0, :, 0, 1] = x
  expected = np.zeros(n - 3)
  for f in range(n - 3):
    expected[f] = abs(x[f + 3] - 3 * x[f + 2] + 3 * x[f + 1] - x[f])
  per = jerk.frame_jerk(positions, [n])[0]
  np.testing.assert_allclose(per, expected, atol=1e-15)
  np.testing.assert_allclose(sorted(per[per > 0]), sorted([h, 2 * h, h]), atol=1e-15)
  assert jerk.peak_jerk(per) == pytest.approx(2 * h)


def test_transition_windows_are_centred_as_upstream():
  seq = np.arange(100)
  w = jerk.transition_windows(seq, [30, 40, 30], 20)
  np.testing.assert_array_equal(w, [np.arange(20, 40), np.arange(60, 80)])
  w = jerk.transition_windows(seq, [30, 70], 7)   # odd: [mid - 3, mid + 4)
  np.testing.assert_array_equal(w, [np.arange(27, 34)])
  with pytest.raises(ValueError, match='does not fit'):
    jerk.transition_windows(seq, [5, 95], 20)


def test_bad_inputs():
  with pytest.raises(ValueError, match='batch, frames, joints, 3'):
    jerk.frame_jerk(np.zeros((10, 22, 3)), [10])
  with pytest.raises(ValueError, match='NaN'):
    jerk.frame_jerk(np.full((1, 10, 2, 3), np.nan), [10])
  with pytest.raises(ValueError, match='2 lengths'):
    jerk.frame_jerk(np.zeros((1, 10, 2, 3)), [10, 10])
