"""The embedded SMAL-like benchmark: scaled, posed dm-control dogs in the ULRSSM layout.

Issue 15, item 7 (animals).  The template is the dm-control wheel's
`suite/dog_assets/dog_skin.skn` (24,065 vertices with UV-seam duplicates, welded to
16,952 by `meshes.unique_vertices`; one closed component), skinned to 57 bones
(`meshes.read_skn_bones`: bind position, identity bind quaternion, per-vertex weights
summing to 1; a welded vertex takes the mean of its duplicates' weights, which agree).
The bone frames are the bind positions; the bone tree is the body nesting of
`suite/dog.xml` (bodies without skin, e.g. `hand_anchor_*`, are skipped: a bone's parent
is its nearest skinned ancestor).  Each dog (`SHAPES`) gets per-limb scalings and joint
bends (knees, elbows, neck, tail: creases) by linear-blend skinning (`skinning.py`), and
is then coarsened exactly as the human benchmark (`benchmark.coarsen`: geodesic Voronoi
re-meshing with a per-shape seed, centred, unit area) and written under
`<cache>/hybrid_fmaps_dog_<num_vertices>[_<tag>]/` (`shapes/*.off`, `corres/*.vts`, line
t = the coarse vertex of welded template vertex t), to be read back by `data.py`.

Dog axes: +x forward, +y left, +z up; legs bend about the y axis.
"""

from __future__ import annotations

import functools
import hashlib
import json
import xml.etree.ElementTree as ET

import numpy as np

from jaxvision.data import meshes
from jaxvision.data.errors import DataFileError
from jaxvision.projects.hybrid_fmaps import benchmark
from jaxvision.projects.hybrid_fmaps import skinning

LAYOUT_VERSION = 1
SKIN = 'suite/dog_assets/dog_skin.skn'
MJCF = 'suite/dog.xml'
_LIMBS = ('upper_leg_L', 'upper_leg_R', 'upper_arm_L', 'upper_arm_R')

# name: (scales {bone: factor about its head}, rotations {bone: rotation vector})
SHAPES = {
    'dog_00': ({},
               {'lower_leg_L': (0.0, 0.7, 0.0), 'lower_arm_R': (0.0, -0.8, 0.0),
                'C_1': (0.0, 0.3, 0.0)}),
    'dog_01': ({b: 1.25 for b in _LIMBS},                        # long legs
               {'upper_arm_L': (0.0, 0.6, 0.0), 'lower_leg_R': (0.0, 0.9, 0.0),
                'Ca_1': (0.0, -0.6, 0.0)}),
    'dog_02': ({'skull': 1.3, 'Ca_1': 1.4, 'C_7': 0.85},          # big head, long tail
               {'C_4': (0.0, 0.5, 0.0), 'lower_arm_L': (0.0, -1.0, 0.0),
                'lower_arm_R': (0.0, -0.9, 0.0)}),
    'dog_03': ({**{b: 0.75 for b in _LIMBS}, 'L_1': 1.1},         # short legs
               {'lower_leg_L': (0.0, 1.0, 0.0), 'upper_leg_R': (0.0, -0.5, 0.0),
                'C_1': (0.0, 0.0, 0.5)}),
}


@functools.lru_cache(maxsize=1)
def template():
  """(welded verts (16,952, 3), faces, heads {bone: (3,)}, parents, sparse weights)."""
  path = meshes.packaged_file('dm_control', SKIN)
  verts, faces = meshes.read_skn(path, degenerate='raise')
  uniq, ufaces, inverse = meshes.unique_vertices(verts, faces, return_inverse=True)
  bones = meshes.read_skn_bones(path)
  count = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
  heads, weights = {}, {}
  for b in bones:
   if not np.allclose(b['bindquat'], (1.0, 0.0, 0.0, 0.0), atol=1e-6):
    raise DataFileError(path, f'bone {b["name"]!r}: non-identity bind quaternion '
              f'{b["bindquat"]} (this benchmark assumes world-aligned frames)')
   heads[b['name']] = b['bindpos']
   w = np.zeros(len(uniq))
   np.add.at(w, inverse[b['vertices']], b['weights'])
   idx = np.flatnonzero(w)
   weights[b['name']] = (idx, w[idx] / count[idx])
  return uniq, ufaces, heads, skeleton_parents(set(heads)), weights


def skeleton_parents(bones: set) -> dict:
  """{bone: nearest skinned ancestor body in dog.xml (None for the root)}."""
  path = meshes.packaged_file('dm_control', MJCF)
  world = ET.parse(path).getroot().find('worldbody')
  if world is None:
    raise DataFileError(path, 'no <worldbody>')
  parents = {}

  def walk(elem, parent):
    for body in elem.findall('body'):
      name = body.get('name')
      if name in bones:
        parents[name] = parent
      walk(body, name if name in bones else parent)

  walk(world, None)
  missing = sorted(bones - set(parents))
  if missing:
    raise DataFileError(path, f'skin bones {missing} are not bodies of the model')
  return parents


def posed_dog(scales: dict, rotations: dict) -> np.ndarray:
  """(16,952, 3) welded template vertices, scaled and posed (vertex i <-> template i)."""
  verts, _, heads, parents, weights = template()
  return skinning.lbs(verts, heads, parents, weights, rotations, scales)


def build_shape(name: str, num_vertices: int, seed: int):
  """(coarse verts (area 1, centred), faces, corr (16,952,), keep) of one dog."""
  scales, rotations = SHAPES[name]
  return benchmark.coarsen(name, posed_dog(scales, rotations), template()[1], num_vertices,
                           seed)


def _fingerprint(num_vertices: int, names) -> str:
  payload = json.dumps({'v': LAYOUT_VERSION, 'n': num_vertices,
                        'shapes': {n: SHAPES[n] for n in names}}, sort_keys=True)
  return hashlib.sha256(payload.encode()).hexdigest()[:16]


def ensure_benchmark(cache_dir: str | None = None, num_vertices: int = 500,
                     names=None) -> str:
  """Writes the dog layout once (`names`, default all of SHAPES); returns its folder."""
  names, folder = benchmark.layout_folder('dog', 'dogs', SHAPES, names, num_vertices,
                                           cache_dir, _fingerprint)
  return benchmark.write_layout(
      folder, _fingerprint(num_vertices, names), names,
      lambda name, _: build_shape(name, num_vertices, sorted(SHAPES).index(name)))
