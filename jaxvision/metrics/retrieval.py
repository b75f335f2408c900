"""Retrieval metrics: mean average precision and Recall@k over ranked galleries.

The protocol of metric-learning / image-retrieval benchmarks (e.g. CUB, SOP, In-Shop):
every query ranks the gallery by cosine similarity of embeddings (or by given
similarities); a gallery item is relevant when it has the query's label.  With
`exclude_self` (query set == gallery set) a query's own entry is removed from its
ranking.  Ties are broken by gallery order.

  AP(q)   = mean over the relevant items of the precision at their rank;
  mAP     = mean of AP(q) over queries with at least one relevant item;
  R@k     = fraction of those queries with a relevant item among the top k.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def cosine_similarity(queries, gallery):
  """(Q, G) cosine similarities of embedding rows (zero rows give 0)."""
  q = np.asarray(queries, np.float64)
  g = np.asarray(gallery, np.float64)
  if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
    raise ValueError(f'embeddings must be (Q, D) and (G, D), got {q.shape} and {g.shape}')
  q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
  g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
  return q @ g.T


def retrieval_metrics(similarity, query_labels, gallery_labels, *, ks: Sequence[int] = (1, 5),
                      exclude_self: bool = False) -> dict[str, float]:
  """{'map', 'recall@k' ..., 'num_queries'} from a (Q, G) similarity matrix."""
  sim = np.asarray(similarity, np.float64)
  ql, gl = np.asarray(query_labels), np.asarray(gallery_labels)
  if sim.ndim != 2 or sim.shape != (len(ql), len(gl)):
    raise ValueError(f'similarity {sim.shape} must be (queries {len(ql)}, gallery {len(gl)})')
  if not np.all(np.isfinite(sim)):
    raise ValueError('similarities contain NaN or inf')
  if exclude_self and sim.shape[0] != sim.shape[1]:
    raise ValueError('exclude_self needs the queries to be the gallery (a square matrix)')
  if any(int(k) < 1 for k in ks):
    raise ValueError(f'recall ks must be >= 1, got {tuple(ks)}')
  relevant = ql[:, None] == gl[None, :]
  if exclude_self:
    np.fill_diagonal(sim, -np.inf)
    np.fill_diagonal(relevant, False)
  order = np.argsort(-sim, axis=1, kind='stable')
  rel = np.take_along_axis(relevant, order, axis=1)
  if exclude_self:   # the query itself is ranked last; drop that column
    rel = rel[:, :-1]
  n_rel = rel.sum(1)
  has = n_rel > 0
  if not has.any():
    raise ValueError('no query has a relevant gallery item')
  rel = rel[has]
  hits = np.cumsum(rel, axis=1)
  ranks = np.arange(1, rel.shape[1] + 1)
  ap = np.sum(rel * hits / ranks, axis=1) / n_rel[has]
  out = {'map': float(np.mean(ap)), 'num_queries': float(has.sum())}
  for k in ks:
    out[f'recall@{int(k)}'] = float(np.mean(hits[:, min(int(k), rel.shape[1]) - 1] > 0))
  return out
