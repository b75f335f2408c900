"""Tests of jaxvision.metrics.generation against closed forms and independent numpy."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.special

from jaxvision.metrics import generation as gm


def _spd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T + 0.1 * np.eye(d)


def _psd_sqrt(s):
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_distance_matrix_matches_cdist():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
  np.testing.assert_allclose(gm.euclidean_distance_matrix(a, b),
                             scipy.spatial.distance.cdist(a, b), atol=1e-12)
  # Identical rows give exactly 0, never NaN from a negative rounding error.
  same = gm.euclidean_distance_matrix(a * 1e3, a * 1e3)
  assert np.all(np.isfinite(same)) and np.allclose(np.diag(same), 0, atol=1e-4)


def test_frechet_distance_closed_forms():
  rng = np.random.default_rng(1)
  d = 6
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1, s2 = _spd(rng, d), _spd(rng, d)
  # Identical Gaussians.
  assert abs(gm.frechet_distance(mu1, s1, mu1, s1)) < 1e-8
  # 1-D: (m1 - m2)^2 + (sd1 - sd2)^2.
  assert gm.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1, abs=1e-10)
  # Diagonal covariances: sum of squared mean and std differences.
  v1, v2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
  assert gm.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)
  # General covariances: Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), via eigendecompositions.
  r1 = _psd_sqrt(s1)
  expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
              - 2 * np.trace(_psd_sqrt(r1 @ s2 @ r1)))
  assert gm.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_singular_covariances_are_finite():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(3, 8))  # Rank 3 < 8.
  s = np.cov(x @ rng.normal(size=(8, 8)), rowvar=False)
  value = gm.frechet_distance(np.zeros(8), s, np.zeros(8), s)
  assert np.isfinite(value) and abs(value) < 1e-3


def test_fid_on_samples():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
  assert abs(gm.fid(x, x)) < 1e-8
  # A shift changes the mean only: FID = ||shift||^2 exactly.
  shift = np.array([1.0, -2.0, 0.5, 3.0])
  assert gm.fid(x, x + shift) == pytest.approx(np.sum(shift ** 2), rel=1e-8)
  # Large samples of two Gaussians approach the closed form.
  mu2, s2 = np.array([1.0, 0.0, 0.0, 2.0]), np.diag([4.0, 1.0, 0.25, 1.0])
  a = rng.normal(size=(200_000, 4))
  b = mu2 + rng.normal(size=(200_000, 4)) * np.sqrt(np.diag(s2))
  expected = 1 + 4 + (2 - 1) ** 2 + (0.5 - 1) ** 2
  assert gm.fid(a, b) == pytest.approx(expected, abs=0.05)


def test_diversity_protocol_and_expectation():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(1000, 3))
  # The protocol: two independent draws of `times` indices without replacement.
  draw = np.random.default_rng(7)
  first, second = draw.choice(1000, 300, replace=False), draw.choice(1000, 300, replace=False)
  expected = np.mean([np.sqrt(np.sum((x[i] - x[j]) ** 2)) for i, j in zip(first, second)])
  assert gm.diversity(x, 300, seed=7) == pytest.approx(expected, rel=1e-12)
  assert gm.diversity(x, 300, seed=7) == gm.diversity(x, 300, seed=np.random.default_rng(7))
  # Standard normal rows in d dims: E||x - y|| = 2 Gamma((d+1)/2) / Gamma(d/2).
  d = 8
  y = np.random.default_rng(5).normal(size=(20_000, d))
  mean_dist = 2 * math.exp(scipy.special.gammaln((d + 1) / 2) - scipy.special.gammaln(d / 2))
  values = [gm.diversity(y, 5000, seed=s) for s in range(4)]
  # A coincident pair (same index drawn in both) has distance 0: expectation scales by 1 - 1/n.
  assert np.mean(values) == pytest.approx(mean_dist * (1 - 1 / 20_000), rel=0.02)
  with pytest.raises(ValueError, match='more than 300'):
    gm.diversity(x[:300], 300)


def test_multimodality():
  # Generation r of every text sits at r * e_0: a pair (r1, r2) is |r1 - r2| apart.
  texts, repeats = 5, 30
  x = np.zeros((texts, repeats, 4))
  x[:, :, 0] = np.arange(repeats)[None]
  draw = np.random.default_rng(3)
  first, second = draw.choice(repeats, 10, replace=False), draw.choice(repeats, 10, replace=False)
  assert gm.multimodality(x, 10, seed=3) == pytest.approx(np.mean(np.abs(first - second)))
  # Identical generations per text: 0, however far apart the texts are.
  same = np.repeat(np.random.default_rng(0).normal(size=(texts, 1, 4)) * 100, repeats, axis=1)
  assert gm.multimodality(same, 10) == 0.0
  with pytest.raises(ValueError, match='more than 10'):
    gm.multimodality(x[:, :10], 10)
  with pytest.raises(ValueError, match='3 dims'):
    gm.multimodality(x[0], 10)


def _reference_matching(t, m, batch, k):
  """Per batch: rank of the true motion = number of strictly closer motions."""
  n = len(t) - len(t) % batch
  hits, scores = np.zeros(k), []
  for s in range(0, n, batch):
    d = scipy.spatial.distance.cdist(t[s:s + batch], m[s:s + batch])
    for i in range(batch):
      rank = np.sum(d[i] < d[i, i])
      hits += [rank < kk for kk in range(1, k + 1)]
      scores.append(d[i, i])
  return hits / n, np.mean(scores)


def test_r_precision_and_matching_score_match_reference():
  rng = np.random.default_rng(6)
  t = rng.normal(size=(100, 16))
  m = t + rng.normal(size=(100, 16)) * 1.2  # Noisy pairs: neither 0 nor perfect.
  out = gm.matching_metrics(t, m)
  ref_r, ref_score = _reference_matching(t, m, 32, 3)
  assert out['count'] == 96  # The last partial batch is dropped, as upstream.
  np.testing.assert_allclose(out['r_precision'], ref_r, atol=1e-12)
  assert out['matching_score'] == pytest.approx(ref_score, rel=1e-10)
  assert 0.1 < out['r_precision'][0] < out['r_precision'][2] < 1.0
  np.testing.assert_allclose(gm.r_precision(t, m, top_k=5), _reference_matching(t, m, 32, 5)[0])
  # Perfect pairs: all hits, zero distance; kept partial batch with drop_last=False.
  out = gm.matching_metrics(t, t, drop_last=False)
  np.testing.assert_allclose(out['r_precision'], 1.0)
  assert out['count'] == 100 and out['matching_score'] == pytest.approx(0.0, abs=1e-6)
  # Chance level for unrelated embeddings: top-k ~ k / 32.
  u = rng.normal(size=(32 * 200, 8))
  v = rng.normal(size=(32 * 200, 8))
  np.testing.assert_allclose(gm.r_precision(u, v), np.arange(1, 4) / 32, atol=0.01)


def test_r_precision_with_duplicate_captions():
  # One batch of 4 with captions 'b', 'a', 'b', 'c': the duplicate (row 2) is dropped,
  # leaving rows/cols 0, 1, 3. By hand: text 1 is at its motion (rank 0); text 3 is 9
  # from its motion, 13 and 20 from the others (rank 0); text 0 is 3 from its motion
  # but 1 from motion 3 (rank 1). Hits @1,2,3 = 2, 3, 3, rescaled by 4/3, over 4 pairs.
  t = np.array([[0.0, 0], [10, 0], [50, 50], [-10, 0]])
  m = np.array([[3.0, 0], [10, 0], [50, 50], [-1, 0]])
  out = gm.matching_metrics(t, m, batch_size=4, top_k=3, captions=['b', 'a', 'b', 'c'])
  np.testing.assert_allclose(out['r_precision'], [2 / 3, 1.0, 1.0])
  assert out['matching_score'] == pytest.approx((3 + 0 + 0 + 9) / 4)
  # Without duplicates the captions change nothing.
  rng = np.random.default_rng(8)
  a, b = rng.normal(size=(64, 5)), rng.normal(size=(64, 5))
  np.testing.assert_allclose(gm.r_precision(a, b, captions=[str(i) for i in range(64)]),
                             gm.r_precision(a, b))


def test_bad_inputs_are_named():
  x = np.zeros((40, 3))
  with pytest.raises(ValueError, match='NaN'):
    gm.fid(np.full((5, 2), np.nan), x[:5, :2])
  with pytest.raises(ValueError, match='match in shape'):
    gm.matching_metrics(x, x[:, :2])
  with pytest.raises(ValueError, match='no full batch'):
    gm.matching_metrics(x[:10], x[:10])
  with pytest.raises(ValueError, match='captions'):
    gm.matching_metrics(x, x, captions=['a'])
  with pytest.raises(ValueError, match='at least 2'):
    gm.fid(x[:1], x[:1])
  with pytest.raises(ValueError, match='covariances'):
    gm.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


def test_confidence_interval():
  mean, ci = gm.confidence_interval([[1.0, 2.0], [3.0, 6.0]])
  np.testing.assert_allclose(mean, [2.0, 4.0])
  np.testing.assert_allclose(ci, 1.96 * np.array([1.0, 2.0]) / np.sqrt(2))
