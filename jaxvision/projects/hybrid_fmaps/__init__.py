"""Hybrid Functional Maps (Bastian, Xie, Navab, Lähner, CVPR 2024): the axiomatic half.

An evaluate-only project (`kind = 'evaluate_only'`, no model, no training): the
evaluators run the axiomatic pipeline (`axiomatic.py`: WKS -> regularised LB / elastic
Kronecker fmap -> ZoomOut or hybrid ZoomOut) on ULRSSM-layout data (`data.py`) — the
real release via `input.data_dir`, or the embedded MakeHuman benchmark
(`benchmark.py`) or the embedded dm-control dogs (`animals.py`) — and report the mean geodesic error and PCK (`evaluators.py`).
The matching command for one's own meshes is `match.py`.  See README.md.
"""

from __future__ import annotations

import ml_collections

from jaxvision.projects.hybrid_fmaps import evaluators as evaluators_lib

kind = 'evaluate_only'

__all__ = ['kind', 'default_config', 'EVALUATORS']

# Its evaluator types (`config.evals.<name>.type`): 'axiomatic'.
EVALUATORS = evaluators_lib.EVALUATORS


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'input': {
          'data_dir': '',        # a ULRSSM-layout folder (shapes/ + corres/); '' = embedded
          'cache_dir': '',       # embedded benchmark: '' = $JAXVISION_CACHE or ~/.cache/jaxvision
          'benchmark': 'humans', # embedded benchmark: 'humans' (MakeHuman) or 'dogs' (dm-control)
          'num_vertices': 500,   # embedded benchmark: coarse vertices per body
          'shapes': (),          # () = every shape of the folder
          'ordered': False,      # pairs: both directions (True) or combinations
          'max_pairs': 0,        # 0 = all pairs
      },
  })
