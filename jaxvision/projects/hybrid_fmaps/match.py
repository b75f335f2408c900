r"""Match two meshes with the axiomatic (hybrid) functional-map pipeline.

  python -m jaxvision.projects.hybrid_fmaps.match --source=A.off --target=B.off \
      --basis=hybrid [--k_lbo=140 --k_elastic=60] --out=p2p.npy

Reads `.off`, `.ply` or `.obj` (jaxvision.data.meshes), runs `axiomatic.match` (WKS ->
regularised LB fmap [+ elastic Kronecker fmap] -> ZoomOut [hybrid ZoomOut]) and writes
an int64 `.npy` with, for every TARGET vertex, the index of its SOURCE vertex.
`--basis=lbo` uses k_lbo + k_elastic LBO functions (the same total basis size).
Hybrid Functional Maps (Bastian et al., CVPR 2024), Sec. 5.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
import numpy as np

from jaxvision.data import meshes
from jaxvision.projects.hybrid_fmaps import axiomatic

_D = axiomatic.Settings()


def define_flags():
  flags.DEFINE_string('source', None, 'source mesh (.off / .ply / .obj)', required=True)
  flags.DEFINE_string('target', None, 'target mesh (.off / .ply / .obj)', required=True)
  flags.DEFINE_enum('basis', 'hybrid', list(axiomatic.BASES), 'spectral basis')
  flags.DEFINE_integer('k_lbo', _D.k_lbo, 'LBO functions (hybrid); lbo uses k_lbo+k_elastic')
  flags.DEFINE_integer('k_elastic', _D.k_elastic, 'elastic functions (hybrid)')
  flags.DEFINE_integer('k_init_lbo', _D.k_init_lbo, 'initial LBO fmap size')
  flags.DEFINE_integer('k_init_elastic', _D.k_init_elastic, 'initial elastic fmap size')
  flags.DEFINE_integer('n_eig_descr', _D.n_eig_descr, 'LBO eigenpairs for the WKS')
  flags.DEFINE_float('bending_weight', _D.bending_weight, 'shell bending weight')
  flags.DEFINE_string('out', 'p2p.npy', 'output .npy (target -> source indices)')


def run(source: str, target: str, out: str, **settings) -> np.ndarray:
  s = axiomatic.Settings(**settings)
  vx, fx = meshes.read_mesh(source)
  vy, fy = meshes.read_mesh(target)
  p2p = axiomatic.match(vx, fx, vy, fy, s)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.save(out, p2p.astype(np.int64))
  return p2p


def main(argv):
  del argv
  f = flags.FLAGS
  p2p = run(f.source, f.target, f.out, basis=f.basis, k_lbo=f.k_lbo, k_elastic=f.k_elastic,
            k_init_lbo=f.k_init_lbo, k_init_elastic=f.k_init_elastic,
            n_eig_descr=f.n_eig_descr, bending_weight=f.bending_weight)
  print(f'wrote {f.out}: {len(p2p)} target vertices -> source indices')


if __name__ == '__main__':
  define_flags()
  app.run(main)
