r"""Hybrid Functional Maps, axiomatic, SMAL_r (ULRSSM release) — the upstream sizes.

  ULRSSM_DATA=/path/to/data python -m jaxvision.train \
      --config=experiments/hybrid_fmaps/smal.py --workdir=workdirs/hfm_smal

ZoomOut with 200 LBO functions vs hybrid ZoomOut with 140 LBO + 60 elastic.  Shapes:
every mesh of `$ULRSSM_DATA/SMAL_r/shapes` (override `--config.input.shapes` with the
test animals of the release's `test_cat.txt` split; that split file is not read here).
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
from jaxvision.projects.hybrid_fmaps import configs as common


def _config(arg=None):
  if parse_arg(arg, tiny=False).tiny:   # the pipeline on embedded data (tests)
    return common.tiny()
  return common.make(data_dir=common.ulrssm_dir('SMAL_r'))


def get_config(arg=None):
  return with_defaults(_config(arg))
