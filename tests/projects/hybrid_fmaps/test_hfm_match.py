"""The matching command: an identity pair is matched exactly (zero geodesic error)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from jaxvision.data import meshes
from jaxvision.geometry import geodesics
from jaxvision.geometry import primitives
from jaxvision.metrics import geodesic
from jaxvision.projects.hybrid_fmaps import match

SMALL = dict(k_lbo=12, k_elastic=6, k_init_lbo=6, k_init_elastic=3, n_eig_descr=10)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _write_obj(path, v, f):
  with open(path, 'w') as fh:
    fh.writelines(f'v {a:.17g} {b:.17g} {c:.17g}\n' for a, b, c in v)
    fh.writelines(f'f {a + 1} {b + 1} {c + 1}\n' for a, b, c in f)


def _check_identity(out, v, f):
  p2p = np.load(out)
  assert p2p.dtype == np.int64 and p2p.shape == (len(v),)
  dist = geodesics.geodesic_distmat(v, f)
  r = geodesic.geodesic_error(dist, p2p, np.arange(len(v)), np.linspace(0, 0.2, 5))
  assert r['mean_error'] == 0.0 and r['auc'] == 1.0


def test_identity_pair_through_the_command(tmp_path):
  v, f = primitives.bumpy_sphere(1)
  src = str(tmp_path / 'a.off')
  meshes.write_off(src, v, f)
  out = str(tmp_path / 'p2p.npy')
  flags = [f'--{k}={val}' for k, val in SMALL.items()]
  env = {**os.environ, 'PYTHONPATH': REPO}
  subprocess.run([sys.executable, '-m', 'jaxvision.projects.hybrid_fmaps.match',
                  f'--source={src}', f'--target={src}', '--basis=hybrid', f'--out={out}',
                  *flags], check=True, cwd=REPO, env=env, capture_output=True)
  _check_identity(out, v, f)


@pytest.mark.parametrize('basis', ['lbo', 'hybrid'])
def test_identity_pair_has_zero_error_obj(tmp_path, basis):
  v, f = primitives.bumpy_sphere(1)
  src = str(tmp_path / 'a.obj')
  _write_obj(src, v, f)
  out = str(tmp_path / 'p2p.npy')
  match.run(src, src, out, basis=basis, **SMALL)
  _check_identity(out, v, f)


def test_bad_basis_is_refused(tmp_path):
  v, f = primitives.icosphere(1)
  src = str(tmp_path / 'a.off')
  meshes.write_off(src, v, f)
  with pytest.raises(ValueError, match='basis'):
    match.run(src, src, str(tmp_path / 'p.npy'), basis='wave', **SMALL)
