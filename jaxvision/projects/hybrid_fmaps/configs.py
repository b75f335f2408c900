"""Builder of the Hybrid Functional Maps axiomatic experiment configs (evaluate-only).

`make(...)` returns the unvalidated ConfigDict; each experiment's `get_config` passes
it through `jaxvision.config.with_defaults` (needs the binary's `evaluate_only` kind).
"""

import os

import ml_collections


def ulrssm_dir(name: str) -> str:
  """`$ULRSSM_DATA/<name>` (default `data/<name>`): a folder of the ULRSSM release."""
  return os.path.join(os.environ.get('ULRSSM_DATA', 'data'), name)


def make(*, data_dir='', shapes=(), k_lbo=140, k_elastic=60, n_eig_descr=50,
         num_vertices=500, max_pairs=0, ordered=False, bases=('lbo', 'hybrid')):
  c = ml_collections.ConfigDict()
  c.project = 'hybrid_fmaps'
  c.seed = 0
  c.input = dict(data_dir=data_dir, cache_dir='', num_vertices=num_vertices,
                 shapes=tuple(shapes), ordered=ordered, max_pairs=max_pairs)
  c.evals = dict(axiomatic=dict(type='axiomatic', bases=tuple(bases), k_lbo=k_lbo,
                                k_elastic=k_elastic, n_eig_descr=n_eig_descr))
  return c


def with_project_defaults(c):
  """`c.input` / `c.evals` over the project's defaults, without the training binary."""
  from jaxvision.projects import hybrid_fmaps  # pylint: disable=g-import-not-at-top
  from jaxvision.projects.hybrid_fmaps import evaluators  # pylint: disable=g-import-not-at-top
  out = hybrid_fmaps.default_config()
  out.input.update(c.input.to_dict())
  out.evals = {name: {**evaluators.DEFAULTS, **e} for name, e in c.evals.to_dict().items()}
  return out


def run_evaluators(c) -> dict[str, dict[str, float]]:
  """{evaluator name: metrics} of a config, run directly (what the binary does)."""
  from jaxvision.projects import hybrid_fmaps  # pylint: disable=g-import-not-at-top
  full = with_project_defaults(c)
  return {e.name: e.run(None) for e in hybrid_fmaps.make_evaluators(full, None)}
