"""FocusMAE masking (masking.py): exact counts, determinism, the ROI bias, the prior map."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.projects.focusmae import masking

GRID = (8, 14, 14)     # 16 x 224^2 clip, tubelet 2, patch 16
N = 8 * 14 * 14


def _keys(n, seed=0):
  return jax.random.split(jax.random.key(seed), n)


def test_num_visible_matches_upstream_generators():
  assert masking.num_visible('focus', GRID, 0.8) == 313          # int(1568 * 0.2)
  assert masking.num_visible('random', GRID, 0.9) == 156
  assert masking.num_visible('tube', GRID, 0.9) == 8 * (196 - 176)
  assert masking.num_visible('frame', GRID, 0.5) == 196 * 4
  with pytest.raises(ValueError, match='unknown mask type'):
    masking.num_visible('block', GRID, 0.8)
  with pytest.raises(ValueError, match='leaves 0'):
    masking.num_visible('random', (1, 2, 2), 1.0)


def test_exact_counts_and_determinism():
  prior = masking.tile_prior(masking.region_prior(jnp.array([[40., 60., 120., 150.]]),
                                                  jnp.array([True]), (14, 14), 16), 8)
  key = jax.random.key(7)
  makers = {
      'random': lambda k: masking.random_mask(k, N, N - 313),
      'tube': lambda k: masking.tube_mask(k, GRID, 0.9),
      'frame': lambda k: masking.frame_mask(k, GRID, 0.5),
      'focus': lambda k: masking.focus_mask(k, prior, N - 313),
      'focus_visible': lambda k: masking.focus_mask(k, prior, N - 313, direction='visible'),
  }
  expect = {'random': N - 313, 'tube': N - 8 * 20, 'frame': N // 2, 'focus': N - 313,
            'focus_visible': N - 313}
  for name, make in makers.items():
    masks = jax.vmap(make)(_keys(16))
    assert masks.shape == (16, N) and masks.dtype == bool
    np.testing.assert_array_equal(masks.sum(1), expect[name], err_msg=name)
    np.testing.assert_array_equal(make(key), make(key))                  # same key, same mask
    distinct = len({np.asarray(m).tobytes() for m in masks})             # keys differ
    assert distinct >= (8 if name == 'frame' else 16), name             # (C(8,4) = 70 frame masks)
  tube = np.asarray(makers['tube'](key)).reshape(GRID)
  assert (tube == tube[:1]).all()                                       # same in every slice
  frame = np.asarray(makers['frame'](key)).reshape(GRID)
  assert set(frame.reshape(8, -1).mean(1)) == {0.0, 1.0}


def _np_prior(boxes, valid, gh, gw, patch, inflate, reference):
  """Independent version: boxes via centre and size, loops over tokens and boxes."""
  h, w = gh * patch, gw * patch
  if any(valid):
    use = []
    for (x1, y1, x2, y2), v in zip(boxes, valid):
      if v:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        bw, bh = (x2 - x1) * inflate, (y2 - y1) * inflate
        use.append((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2))
  else:
    use = [(w / 4, h / 4, 3 * w / 4, 3 * h / 4)]
  out = np.zeros((gh, gw), bool)
  for r in range(gh):
    for c in range(gw):
      if reference == 'center':
        y, x = (r + 0.5) * patch, (c + 0.5) * patch
      else:
        y, x = max(r * patch - patch / 2, 0), max(c * patch - patch / 2, 0)
      out[r, c] = any(x1 <= x <= x2 and y1 <= y <= y2 for x1, y1, x2, y2 in use)
  return out.reshape(-1)


@pytest.mark.parametrize('reference', ['center', 'upstream'])
@pytest.mark.parametrize('inflate', [1.0, 1.2, 1.5])
def test_region_prior_against_numpy(reference, inflate):
  boxes = np.array([[40., 60., 120., 150.], [170., 10., 200., 42.], [0., 0., 5., 5.]])
  valid = np.array([True, True, False])
  got = masking.region_prior(boxes, valid, (14, 14), 16, inflate=inflate, reference=reference)
  ref = _np_prior(boxes, valid, 14, 14, 16, inflate, reference)
  np.testing.assert_array_equal(got, ref)
  assert 0 < ref.sum() < 196
  # no valid box: the central box [W/4, H/4, 3W/4, 3H/4]
  got = masking.region_prior(boxes, np.zeros(3, bool), (14, 14), 16, inflate=inflate,
                             reference=reference)
  np.testing.assert_array_equal(got, _np_prior(boxes, [False] * 3, 14, 14, 16, 1.0, reference))
  # inflation grows the region monotonically
  small = masking.region_prior(boxes, valid, (14, 14), 16, inflate=1.0, reference=reference)
  big = masking.region_prior(boxes, valid, (14, 14), 16, inflate=2.0, reference=reference)
  assert bool(jnp.all(big >= small)) and int(big.sum()) > int(small.sum())


def test_inflate_boxes_keeps_centre_scales_size():
  b = masking.inflate_boxes(jnp.array([[10., 20., 50., 40.]]), 1.5)
  np.testing.assert_allclose(b, [[0., 15., 60., 45.]])


def test_bias_direction_measured():
  """ROI tokens are masked more often with direction 'mask', less with 'visible'."""
  prior = masking.tile_prior(masking.region_prior(jnp.array([[40., 60., 120., 150.]]),
                                                  jnp.array([True]), (14, 14), 16), 8)
  roi = np.asarray(prior)
  n_mask = N - 313
  freq = {}
  for direction in ('mask', 'visible'):
    for delta in (0.0, 2.0):
      masks = np.asarray(jax.vmap(lambda k: masking.focus_mask(  # pylint: disable=cell-var-from-loop
          k, prior, n_mask, delta=delta, direction=direction))(_keys(400, 1)))
      freq[direction, delta] = masks[:, roi].mean(), masks[:, ~roi].mean()
  ratio = n_mask / N
  for direction in ('mask', 'visible'):   # delta 0: uniform, the mask ratio everywhere
    in_roi, out_roi = freq[direction, 0.0]
    assert abs(in_roi - ratio) < 0.01 and abs(out_roi - ratio) < 0.01
  in_roi, out_roi = freq['mask', 2.0]
  assert in_roi > out_roi + 0.1
  in_roi, out_roi = freq['visible', 2.0]
  assert in_roi < out_roi - 0.1


def _plackett_luce_inclusion(p, k):
  """Exact P(token i among k draws without replacement, sequential multinomial)."""
  n = len(p)
  incl = np.zeros(n)
  for seq in itertools.permutations(range(n), k):
    prob, left = 1.0, 1.0
    for i in seq:
      prob *= p[i] / left
      left -= p[i]
    incl[list(seq)] += prob
  return incl


def test_sampler_inclusion_follows_probabilities():
  logits = jnp.array([0.0, 1.0, -1.0, 0.5, 2.0, -0.5])
  prior = jnp.array([0, 1, 0, 0, 1, 0], bool)
  k = 2
  z = np.asarray(masking.focus_logits(prior, 1.0, logits))
  p = np.exp(z - z.max())
  p /= p.sum()
  exact = _plackett_luce_inclusion(p, k)
  s = 40_000
  masks = np.asarray(jax.vmap(lambda key: masking.focus_mask(
      key, prior, k, delta=1.0, logits=logits))(_keys(s, 3)))
  emp = masks.mean(0)
  sigma = np.sqrt(exact * (1 - exact) / s)
  assert np.all(np.abs(emp - exact) < 5 * sigma + 1e-4), (emp, exact)


def test_bad_arguments():
  prior = jnp.zeros((10,), bool)
  with pytest.raises(ValueError, match='num_masked'):
    masking.focus_mask(jax.random.key(0), prior, 10)
  with pytest.raises(ValueError, match='direction'):
    masking.focus_mask(jax.random.key(0), prior, 3, direction='both')
  with pytest.raises(ValueError, match='reference'):
    masking.region_prior(jnp.zeros((1, 4)), jnp.ones(1, bool), (2, 2), 16, reference='corner')
  with pytest.raises(ValueError, match='valid flags'):
    masking.region_prior(jnp.zeros((2, 4)), jnp.ones(1, bool), (2, 2), 16)
