"""Retrieval mAP and Recall@k against scikit-learn's per-query average precision."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from jaxvision.metrics import retrieval


def _reference(sim, ql, gl, ks, exclude_self):
  aps, hits = [], {k: [] for k in ks}
  for i in range(len(ql)):
    keep = np.ones(len(gl), bool)
    if exclude_self:
      keep[i] = False
    s, rel = sim[i, keep], gl[keep] == ql[i]
    if not rel.any():
      continue
    aps.append(average_precision_score(rel, s))
    top = np.argsort(-s, kind='stable')
    for k in ks:
      hits[k].append(rel[top[:k]].any())
  return aps, hits


@pytest.mark.parametrize('exclude_self', [False, True])
def test_matches_sklearn_per_query(exclude_self):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 6, 80)
  centers = rng.normal(size=(6, 8))
  emb = centers[labels] + 1.5 * rng.normal(size=(80, 8))
  if exclude_self:
    q, g, ql, gl = emb, emb, labels, labels
  else:
    q, ql = emb[:30], labels[:30]
    g, gl = emb[30:], labels[30:]
  sim = retrieval.cosine_similarity(q, g)
  out = retrieval.retrieval_metrics(sim, ql, gl, ks=(1, 5), exclude_self=exclude_self)
  aps, hits = _reference(sim, ql, gl, (1, 5), exclude_self)
  assert out['map'] == pytest.approx(np.mean(aps), abs=1e-12)
  assert out['recall@1'] == pytest.approx(np.mean(hits[1]))
  assert out['recall@5'] == pytest.approx(np.mean(hits[5]))
  assert out['num_queries'] == len(aps)
  assert 0.2 < out['map'] < 1.0


def test_closed_forms_and_bad_input():
  # query label 0; gallery ranked: 1, 0, 0 -> AP = (1/2 + 2/3) / 2, R@1 = 0, R@2 = 1
  sim = np.array([[0.9, 0.8, 0.7]])
  out = retrieval.retrieval_metrics(sim, [0], [1, 0, 0], ks=(1, 2))
  assert out['map'] == pytest.approx((1 / 2 + 2 / 3) / 2)
  assert (out['recall@1'], out['recall@2']) == (0.0, 1.0)
  # leave-one-out: each point's nearest other point has its label
  x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
  loo = retrieval.retrieval_metrics(retrieval.cosine_similarity(x, x), [0, 0, 1, 1],
                                    [0, 0, 1, 1], ks=(1,), exclude_self=True)
  assert loo['map'] == 1.0 and loo['recall@1'] == 1.0
  with pytest.raises(ValueError, match='relevant'):
    retrieval.retrieval_metrics(sim, [5], [1, 0, 0])
  with pytest.raises(ValueError, match='square'):
    retrieval.retrieval_metrics(sim, [0], [1, 0, 0], exclude_self=True)
  with pytest.raises(ValueError, match=r'\(Q, D\)'):
    retrieval.cosine_similarity(np.zeros((2, 3)), np.zeros((2, 4)))
