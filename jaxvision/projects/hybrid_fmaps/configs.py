"""Builder of the Hybrid Functional Maps axiomatic experiment configs (evaluate-only).

`make(...)` returns the unvalidated ConfigDict; each experiment's `get_config` passes
it through `jaxvision.config.with_defaults`.
"""

import os

import ml_collections


def ulrssm_dir(name: str) -> str:
  """`$ULRSSM_DATA/<name>` (default `data/<name>`): a folder of the ULRSSM release."""
  return os.path.join(os.environ.get('ULRSSM_DATA', 'data'), name)


def make(*, data_dir='', shapes=(), k_lbo=140, k_elastic=60, n_eig_descr=50,
         num_vertices=500, max_pairs=0, ordered=False, bases=('lbo', 'hybrid'),
         benchmark='humans'):
  c = ml_collections.ConfigDict()
  c.project = 'hybrid_fmaps'
  c.seed = 0
  c.input = dict(data_dir=data_dir, cache_dir='', benchmark=benchmark,
                 num_vertices=num_vertices,
                 shapes=tuple(shapes), ordered=ordered, max_pairs=max_pairs)
  c.evals = dict(axiomatic=dict(type='axiomatic', bases=tuple(bases), k_lbo=k_lbo,
                                k_elastic=k_elastic, n_eig_descr=n_eig_descr))
  return c


def tiny(benchmark='humans') -> ml_collections.ConfigDict:
  """`:tiny` of every config: the same pipeline on 2 embedded shapes of 200 vertices,
  one pair, 20 LBO + 10 elastic (tests; seconds on 2 CPU cores)."""
  shapes = ('body_00', 'body_01') if benchmark == 'humans' else ('dog_00', 'dog_01')
  return make(k_lbo=20, k_elastic=10, n_eig_descr=20, num_vertices=200,
              shapes=shapes, max_pairs=1, benchmark=benchmark)
