"""The ULRSSM data-release layout (FAUST_r, SCAPE_r, SMAL_r, DT4D_r, TOPKIDS; Cao et al.
2023, used by Hybrid Functional Maps, Sec. 6) and its `.vts` correspondence files.

A dataset folder holds `shapes/<name>.off` (or `.ply` / `.obj`) and `corres/<name>.vts`.
A `.vts` file lists, one integer a line, the 1-BASED index of the vertex of `<name>`
that corresponds to each vertex of a common template (so all `.vts` files of a dataset
have the same length).  The ground truth of a pair (x, y) is `corr_x[t] <-> corr_y[t]`,
and the geodesic error of a map p2p (y -> x, one x index per y vertex) is
`dist_x[corr_x, p2p[corr_y]]` (upstream `metrics/geodist_metric.py`).  Shapes of the
release are area-normalised already.  Pairs: all unordered pairs of the listed shapes
(`ordered=True`: both directions).
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import numpy as np

from jaxvision.data import meshes
from jaxvision.data.errors import DataFileError

MESH_EXTS = ('.off', '.ply', '.obj')


def read_vts(path: str, num_vertices: int | None = None) -> np.ndarray:
  """0-based int64 indices of a `.vts` file (1-based on disk); bad files are refused."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'no correspondence file at {path}')
  out = []
  with open(path, 'r', errors='replace') as fh:
    for lineno, line in enumerate(fh, 1):
      words = line.split()
      if not words:
        continue
      for w in words:
        try:
          i = int(w)
        except ValueError:
          raise DataFileError(path, f'line {lineno}: {w[:40]!r} is not an integer vertex '
                              'index') from None
        if i < 1:
          raise DataFileError(path, f'line {lineno}: index {i} < 1 (.vts indices are 1-based)')
        if num_vertices is not None and i > num_vertices:
          raise DataFileError(path, f'line {lineno}: index {i} exceeds the mesh\'s '
                              f'{num_vertices} vertices')
        out.append(i - 1)
  if not out:
    raise DataFileError(path, 'empty .vts file (no correspondence indices)')
  return np.asarray(out, np.int64)


def write_vts(path: str, indices) -> None:
  """Writes 0-based indices as a 1-based `.vts` file."""
  idx = np.asarray(indices, np.int64).ravel()
  if idx.size == 0 or idx.min() < 0:
    raise ValueError(f'{path}: indices must be a non-empty array of 0-based vertex indices')
  with open(path, 'w') as fh:
    fh.write('\n'.join(str(int(i) + 1) for i in idx) + '\n')


@dataclasses.dataclass(frozen=True)
class Shape:
  name: str
  verts: np.ndarray   # (n, 3) float64
  faces: np.ndarray   # (m, 3) int64
  corr: np.ndarray    # (template,) 0-based indices into verts


def shape_names(root: str) -> list[str]:
  folder = os.path.join(root, 'shapes')
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'{root}: no shapes/ folder (expected the ULRSSM layout '
                            'shapes/*.off + corres/*.vts)')
  names = sorted(os.path.splitext(f)[0] for f in os.listdir(folder)
                 if os.path.splitext(f)[1].lower() in MESH_EXTS)
  if not names:
    raise FileNotFoundError(f'{folder}: no .off/.ply/.obj meshes')
  return names


def load_shape(root: str, name: str) -> Shape:
  for ext in MESH_EXTS:
    mesh_path = os.path.join(root, 'shapes', name + ext)
    if os.path.exists(mesh_path):
      break
  else:
    raise FileNotFoundError(f'{root}/shapes: no mesh named {name!r} ({"/".join(MESH_EXTS)})')
  verts, faces = meshes.read_mesh(mesh_path, degenerate='raise')
  corr = read_vts(os.path.join(root, 'corres', name + '.vts'), len(verts))
  return Shape(name=name, verts=verts, faces=faces, corr=corr)


def load_shapes(root: str, names=None) -> dict[str, Shape]:
  names = list(names) if names else shape_names(root)
  shapes = {n: load_shape(root, n) for n in names}
  sizes = {len(s.corr) for s in shapes.values()}
  if len(sizes) > 1:
    raise DataFileError(os.path.join(root, 'corres'),
                        f'.vts files of different lengths {sorted(sizes)}: they must all '
                        'index the same template')
  return shapes


def pairs(names, ordered: bool = False) -> list[tuple[str, str]]:
  """(source, target) name pairs: combinations, or permutations when ordered."""
  names = list(names)
  return list(itertools.permutations(names, 2) if ordered else itertools.combinations(names, 2))
