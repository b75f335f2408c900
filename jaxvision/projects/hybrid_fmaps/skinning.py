"""Linear-blend skinning with per-bone rotations and scalings about the bone heads.

Used by the embedded benchmarks of Hybrid Functional Maps (issue 15, item 7): MakeHuman
bodies (`bodies.py`) and the dm-control dog (`animals.py`).  Each bone b has a head h_b
(its joint, world coordinates at rest), a parent, a local rotation R_b (rotation vector,
world axes at rest) and a uniform scale s_b about its head; its world transform is

    G_b = G_parent(b) · T(h_b) · R_b · s_b · T(−h_b)

(children inherit the scale: scaling the upper leg scales the whole leg below it), and
a vertex moves to `Σ_b w_vb G_b v / Σ_b w_vb`; vertices without weight stay put.  Vertex
i of the result is the image of rest vertex i: correspondence is exact by construction.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def bone_transforms(heads: dict, parents: dict, rotations: dict | None = None,
                    scales: dict | None = None) -> dict[str, np.ndarray]:
  """{bone: 4×4 world transform G_b} (see the module docstring)."""
  rotations, scales = rotations or {}, scales or {}
  for what, d in (('rotations', rotations), ('scales', scales)):
    unknown = sorted(set(d) - set(heads))
    if unknown:
      raise ValueError(f'{what}: unknown bones {unknown}; e.g. {sorted(heads)[:8]}')
  for name, s in scales.items():
    if not s > 0:
      raise ValueError(f'scales[{name!r}]={s}: must be positive')
  world = {}

  def transform(name, depth=0):
    if depth > len(heads):
      raise ValueError(f'bone {name!r}: the parent links form a cycle')
    if name not in world:
      h = np.asarray(heads[name], np.float64)
      a = float(scales.get(name, 1.0)) * Rotation.from_rotvec(
          rotations.get(name, (0.0, 0.0, 0.0))).as_matrix()
      local = np.eye(4)
      local[:3, :3] = a
      local[:3, 3] = h - a @ h
      parent = parents.get(name)
      world[name] = (transform(parent, depth + 1) if parent else np.eye(4)) @ local
    return world[name]

  return {name: transform(name) for name in heads}


def blend(verts, transforms: dict, weights: dict) -> np.ndarray:
  """LBS of `verts` (n, 3) with `{bone: (vertex ids, weights)}` (sparse per bone)."""
  verts = np.asarray(verts, np.float64)
  n = len(verts)
  acc = np.zeros((n, 3))
  total = np.zeros(n)
  hom = np.concatenate([verts, np.ones((n, 1))], axis=1)
  for name, (idx, w) in weights.items():
    if name not in transforms:
      raise ValueError(f'weights for bone {name!r}, which has no transform')
    idx, w = np.asarray(idx, np.int64), np.asarray(w, np.float64)
    if len(idx) == 0:
      continue
    moved = hom[idx] @ transforms[name].T
    np.add.at(acc, idx, w[:, None] * moved[:, :3])
    np.add.at(total, idx, w)
  out = verts.copy()
  has = total > 0
  out[has] = acc[has] / total[has, None]
  return out


def lbs(verts, heads, parents, weights, rotations=None, scales=None) -> np.ndarray:
  return blend(verts, bone_transforms(heads, parents, rotations, scales), weights)
