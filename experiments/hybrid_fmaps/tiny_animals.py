r"""Hybrid Functional Maps, axiomatic: the embedded dm-control dog benchmark on 2 CPU cores.

  python -m jaxvision.train --config=experiments/hybrid_fmaps/tiny_animals.py \
      --workdir=workdirs/hfm_tiny_animals

The SMAL-like counterpart of `tiny.py`: 4 scaled, posed dogs (`animals.py`), 500 coarse
vertices each, 6 pairs; ZoomOut with 50 LBO functions vs hybrid ZoomOut with 35 LBO + 15
elastic; WKS from 30 LBO eigenpairs.  `:tiny` = 2 dogs of 200 vertices, 1 pair, 20+10
(tests).  `:refine` = both start from the true map with 30% of the target vertices sent
to random source vertices; `:fine` = 1,000 coarse vertices per dog.
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
from jaxvision.projects.hybrid_fmaps import configs as common


def _config(arg=None):
  arg = parse_arg(arg, tiny=False, refine=False, fine=False)
  if arg.tiny:
    return common.tiny(benchmark='dogs')
  c = common.make(k_lbo=35, k_elastic=15, n_eig_descr=30, num_vertices=500,
                  benchmark='dogs')
  if arg.refine:
    c.evals.axiomatic.init = 'perturbed_truth'
  if arg.fine:
    c.input.num_vertices = 1000
  return c


def get_config(arg=None):
  return with_defaults(_config(arg))
