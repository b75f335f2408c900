"""Sinusoid tables and RoPE against independent numpy formulas."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import positional


def test_interleaved_table_matches_the_formula():
  d = 8
  table = positional.sinusoid_interleaved(50, d)
  for pos in (0, 1, 17, 49):
    for i in range(d // 2):
      angle = pos / 10000 ** (2 * i / d)
      assert table[pos, 2 * i] == pytest.approx(np.sin(angle), abs=1e-6)
      assert table[pos, 2 * i + 1] == pytest.approx(np.cos(angle), abs=1e-6)


def test_concat_table_is_sin_then_cos():
  d = 12
  pos = np.array([0, 3, 7, 30])
  out = np.asarray(positional.sinusoid_concat(jnp.asarray(pos), d))
  freqs = 10000.0 ** (-np.arange(d // 2) / (d // 2))
  expected = np.concatenate([np.sin(pos[:, None] * freqs), np.cos(pos[:, None] * freqs)], -1)
  np.testing.assert_allclose(out, expected, atol=1e-5)


def _numpy_rope(x, pos, r):
  """Rotary embedding written per channel pair (i, i + r/2)."""
  out = x.copy()
  half = r // 2
  for i in range(half):
    theta = pos / 10000 ** (2 * i / r)
    a, b = x[..., i], x[..., i + half]
    out[..., i] = a * np.cos(theta) - b * np.sin(theta)
    out[..., i + half] = b * np.cos(theta) + a * np.sin(theta)
  return out


def test_rope_rotates_pairs_i_and_i_plus_half_of_the_first_r_channels():
  rng = np.random.default_rng(0)
  t, d, r = 9, 64, 32
  x = rng.normal(size=(t, d)).astype(np.float32)
  pos = np.arange(t, dtype=np.float32)
  freqs = positional.rope_frequencies(jnp.asarray(pos), r)
  out = np.asarray(positional.apply_rope(jnp.asarray(x), freqs))
  np.testing.assert_allclose(out, _numpy_rope(x.astype(np.float64), pos, r), atol=1e-5)
  np.testing.assert_array_equal(out[:, r:], x[:, r:])


def test_rope_makes_scores_depend_on_relative_position_only():
  rng = np.random.default_rng(1)
  q, k = rng.normal(size=(2, 32)).astype(np.float32)
  def score(i, j):
    fq = positional.rope_frequencies(jnp.asarray([float(i)]), 32)
    fk = positional.rope_frequencies(jnp.asarray([float(j)]), 32)
    return float(jnp.sum(positional.apply_rope(q[None], fq) * positional.apply_rope(k[None], fk)))
  assert score(3, 1) == pytest.approx(score(10, 8), abs=1e-4)
  assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)


def test_zero_angles_are_no_rotation():
  x = jnp.arange(24.0).reshape(2, 12)
  np.testing.assert_array_equal(positional.apply_rope(x, jnp.zeros((2, 8))), x)
  with pytest.raises(ValueError, match='exceeds'):
    positional.apply_rope(x, jnp.zeros((2, 16)))
