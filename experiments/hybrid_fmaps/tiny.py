r"""Hybrid Functional Maps, axiomatic: the embedded MakeHuman benchmark on 2 CPU cores.

  python -m jaxvision.train --config=experiments/hybrid_fmaps/tiny.py --workdir=workdirs/hfm_tiny

ZoomOut with 50 LBO functions vs hybrid ZoomOut with 35 LBO + 15 elastic (same total,
the upstream 140:60 ratio) on the 4 embedded bodies (500 coarse vertices, 6 pairs);
WKS from 30 LBO eigenpairs.  `:tiny` = 2 bodies of 200 vertices, 1 pair, 20+10 (tests).
`:lbo_init` = both pipelines start from the same LBO-only WKS map; `:refine` = both start
from the true map with 30% of the target vertices sent to random source vertices
(isolates ZoomOut vs hybrid ZoomOut); `:fine` = 1,000 coarse vertices per body.
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
from jaxvision.projects.hybrid_fmaps import configs as common


def _config(arg=None):
  arg = parse_arg(arg, tiny=False, lbo_init=False, refine=False, fine=False)
  if arg.tiny:
    return common.tiny()
  c = common.make(k_lbo=35, k_elastic=15, n_eig_descr=30, num_vertices=500)
  if arg.lbo_init:
    c.evals.axiomatic.init = 'lbo'
  if arg.refine:
    c.evals.axiomatic.init = 'perturbed_truth'
  if arg.fine:
    c.input.num_vertices = 1000
  return c


def get_config(arg=None):
  return with_defaults(_config(arg))
