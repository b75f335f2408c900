"""`type='retrieval'`: mAP and Recall@k of embedding retrieval (same label = relevant).

The prediction function returns `embedding` (N, D); queries come from `split`, the
gallery from `gallery_split` ('' = the queries themselves, each query left out of its
own ranking).  Similarity is cosine (`jaxvision.metrics.retrieval`).
"""

from __future__ import annotations

from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.metrics import retrieval


class Evaluator(common.Evaluator):
  """`run(params)` -> {'map', 'recall@<k>' ..., 'num_queries'}."""

  DEFAULTS = common.defaults(pred='embed', label_key='label', embedding_key='embedding',
                             gallery_split='', ks=(1, 5, 10))

  def __init__(self, name, cfg, ctx, predict_fns):
    super().__init__(name, cfg, ctx, predict_fns)
    self.infer = inference.Inference(ctx, self.fn, keep=(cfg.label_key,))

  def _embed(self, params, split):
    out = self.infer.predict(params, self.batches(split))
    return self.output(out, self.cfg.embedding_key), out[self.cfg.label_key]

  def run(self, params):
    q, ql = self._embed(params, self.cfg.split)
    if self.cfg.gallery_split:
      g, gl = self._embed(params, self.cfg.gallery_split)
    else:
      g, gl = q, ql
    sim = retrieval.cosine_similarity(q, g)
    return retrieval.retrieval_metrics(sim, ql, gl, ks=tuple(self.cfg.ks),
                                       exclude_self=not self.cfg.gallery_split)
