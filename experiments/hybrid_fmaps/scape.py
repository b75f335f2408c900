r"""Hybrid Functional Maps, axiomatic, SCAPE_r (ULRSSM release) — the upstream setting.

  ULRSSM_DATA=/path/to/data python -m jaxvision.train \
      --config=experiments/hybrid_fmaps/scape.py --workdir=workdirs/hfm_scape

ZoomOut with 200 LBO functions vs hybrid ZoomOut with 140 LBO + 60 elastic (the Hybrid
ULRSSM sizes), WKS from 50 LBO eigenpairs, on the 20 test shapes mesh052..071 (190
pairs).  `data_dir` = `$ULRSSM_DATA/SCAPE_r` (shapes/*.off + corres/*.vts).
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
from jaxvision.projects.hybrid_fmaps import configs as common


def _config(arg=None):
  if parse_arg(arg, tiny=False).tiny:   # the pipeline on embedded data (tests)
    return common.tiny()
  return common.make(data_dir=common.ulrssm_dir('SCAPE_r'),
                     shapes=tuple(f'mesh{i:03d}' for i in range(52, 72)))


def get_config(arg=None):
  return with_defaults(_config(arg))
