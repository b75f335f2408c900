"""Readers for triangle meshes: .ply (ascii / binary), .obj, .off, .stl (ascii / binary), .skn.

Bone surfaces in the Coupled Laplacian BSE benchmark (Bastico et al., CVPR 2024,
Sec. 5; upstream `data/prepare_bse.py`) are meshes turned into point clouds of their
UNIQUE vertices (`unique_vertices`); the shape-matching datasets of Hybrid Functional
Maps (FAUST, SCAPE, SMAL, ...) ship `.off` files.  `.skn` is MuJoCo's binary skin format
(dm_control ships the dog and rodent skins): little-endian int32 counts (nvertex,
ntexcoord, nface, nbone), float32 vertices (3 each), float32 texcoords (2 each), int32
faces (3 each), then per bone a 40-byte name, bind pose/quaternion and vertex weights
(skipped here).  PLY parsing lives in `jaxvision.data.ply`.

`.off` (Geomview Object File Format): an optional header keyword `[ST][C][N]OFF` (the
counts may follow it on the same line, as in ModelNet's "OFF8 6 0"), the counts
"nvertices nfaces nedges", one vertex per line (x y z, then the normal if N, colour if
C, texture coordinates if ST), one face per line ("k i_1 ... i_k [colour]"); '#' starts
a comment.  4D (`4OFF`) and n-dimensional (`nOFF`) files are refused.

Every reader refuses a bad file with `DataFileError` ('<path>: <problem>'): truncated
files, counts larger than the file, non-numeric or non-finite coordinates, vertices
with fewer than 3 coordinates or a different number than the file's first vertex
(OBJ), an ASCII STL whose vertex count is not a multiple of 3, face indices outside
the vertex range.  Polygons are triangulated as fans (exact for convex polygons).

Degenerate faces are DROPPED WITH A WARNING (`MeshWarning`, naming the file and the
counts) by default, or refused with `degenerate='raise'`: polygons with fewer than 3
vertices, triangles that repeat a vertex index, and zero-area triangles (|e1 x e2| <=
1e-12 |e1| |e2|).  They have no surface (no normal, an infinite cotangent weight), so a
Laplacian or a sampler built on them would be wrong; no mesh shipped in the installed
packages (pyvista examples, 300+ dm_control STLs and skins) has any.

`packaged_file` (from `jaxvision.data.packaged`) finds the meshes that dm_control and
pyvista ship without importing those packages.
"""

from __future__ import annotations

import os
import re
import struct
import warnings

from jaxvision.data.errors import DataFileError
from jaxvision.data.errors import check_array
from jaxvision.data.packaged import packaged_file  # pylint: disable=unused-import
from jaxvision.data.ply import parse_ply
from jaxvision.data.ply import write_ply  # pylint: disable=unused-import
import numpy as np

DEGENERATE_SIN = 1e-12


class MeshWarning(UserWarning):
  """A mesh file was read with degenerate faces dropped."""


def _polygons_to_triangles(polys):
  """Fan triangulation: (triangles (m, 3) int64, number of polygons with < 3 vertices)."""
  if isinstance(polys, np.ndarray) and polys.ndim == 2:
    k = polys.shape[1]
    if k < 3:
      return np.zeros((0, 3), np.int64), len(polys)
    tris = [np.stack([polys[:, 0], polys[:, i], polys[:, i + 1]], 1) for i in range(1, k - 1)]
    return np.stack(tris, 1).reshape(-1, 3).astype(np.int64), 0
  tris, short = [], 0
  for p in polys:
    if len(p) < 3:
      short += 1
      continue
    for i in range(1, len(p) - 1):
      tris.append((p[0], p[i], p[i + 1]))
  return np.asarray(tris, np.int64).reshape(-1, 3), short


def _check_mesh(vertices, polys, path, degenerate: str = 'drop'):
  """Validated (vertices (n, 3) float64, triangles (m, 3) int64); see the docstring."""
  if degenerate not in ('drop', 'raise'):
    raise ValueError(f"degenerate must be 'drop' or 'raise', got {degenerate!r}")
  v = check_array(vertices, path, 'vertex coordinates').astype(np.float64)
  if v.size == 0:
    raise DataFileError(path, 'the mesh has no vertices')
  if v.ndim != 2 or v.shape[1] != 3:
    raise DataFileError(path, f'vertices must be (n, 3), got {v.shape}')
  try:
    flat = (polys.ravel() if isinstance(polys, np.ndarray)
            else np.fromiter((i for p in polys for i in p), np.int64))
  except OverflowError:
    raise DataFileError(path, 'a face index does not fit in 64 bits') from None
  if flat.size and (flat.min() < 0 or flat.max() >= len(v)):
    bad = flat[(flat < 0) | (flat >= len(v))][0]
    raise DataFileError(path, f'a face refers to vertex {bad}, outside 0..{len(v) - 1}')
  f, short = _polygons_to_triangles(polys)
  repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
  u = v / max(float(np.abs(v).max()), 1e-300)      # scale-free (no overflow at 1e200)
  e1, e2 = u[f[:, 1]] - u[f[:, 0]], u[f[:, 2]] - u[f[:, 0]]
  cross = np.linalg.norm(np.cross(e1, e2), axis=-1)
  flat_area = ~repeated & (cross <= DEGENERATE_SIN * np.linalg.norm(e1, axis=-1)
                           * np.linalg.norm(e2, axis=-1))
  if short or repeated.any() or flat_area.any():
    problem = (f'{short} polygons with fewer than 3 vertices, {int(repeated.sum())} triangles '
               f'repeating a vertex, {int(flat_area.sum())} zero-area triangles '
               f'(of {len(f)} triangles after fan triangulation)')
    if degenerate == 'raise':
      raise DataFileError(path, f'degenerate faces: {problem}')
    warnings.warn(MeshWarning(f'{path}: dropped degenerate faces: {problem}'), stacklevel=3)
    f = f[~(repeated | flat_area)]
  return v, f


def read_ply(path: str, *, degenerate: str = 'drop'):
  return _check_mesh(*parse_ply(path), path, degenerate)


def _floats(path, words, lineno):
  try:
    return [float(x) for x in words]
  except ValueError:
    raise DataFileError(path, f'line {lineno}: non-numeric value in {" ".join(words)[:80]!r}'
                        ) from None


def _index(path, tok, lineno, nverts):
  """OBJ face index (1-based, or negative = relative to the vertices so far) -> 0-based."""
  try:
    i = int(tok.split('/')[0])
  except ValueError:
    raise DataFileError(path, f'line {lineno}: face index {tok!r} is not an integer') from None
  if i == 0:
    raise DataFileError(path, f'line {lineno}: OBJ face indices start at 1, got 0')
  return i - 1 if i > 0 else nverts + i


def read_obj(path: str, *, degenerate: str = 'drop', group: str | None = None):
  """An .obj mesh; `group` keeps only the faces after `g <group>` lines (all vertices kept)."""
  verts, polys, arity = [], [], None
  current = None
  with open(path, 'r', errors='replace') as fh:
    for lineno, line in enumerate(fh, 1):
      w = line.split()
      if not w:
        continue
      if w[0] == 'g':
        current = ' '.join(w[1:])
      elif w[0] == 'v':
        if len(w) - 1 < 3:
          raise DataFileError(path, f'line {lineno}: a vertex needs x y z, got {len(w) - 1} '
                              f'coordinates: {line.strip()[:80]!r}')
        if arity is None:
          arity = (len(w) - 1, lineno)
        elif len(w) - 1 != arity[0]:
          raise DataFileError(path, f'line {lineno}: vertex with {len(w) - 1} values, but '
                              f'line {arity[1]} has {arity[0]} (mixed vertex arity)')
        verts.append(_floats(path, w[1:4], lineno))
      elif w[0] == 'f' and (group is None or current == group):
        polys.append([_index(path, t, lineno, len(verts)) for t in w[1:]])
  if group is not None and not polys:
    raise DataFileError(path, f'no faces in group {group!r}')
  return _check_mesh(np.asarray(verts, np.float64).reshape(-1, 3), polys, path, degenerate)


def obj_group_vertices(path: str) -> dict[str, np.ndarray]:
  """{group name: sorted 0-based indices of the vertices its faces use} of an .obj file."""
  groups, current, nverts = {}, None, 0
  with open(path, 'r', errors='replace') as fh:
    for lineno, line in enumerate(fh, 1):
      w = line.split()
      if not w:
        continue
      if w[0] == 'v':
        nverts += 1
      elif w[0] == 'g':
        current = ' '.join(w[1:])
      elif w[0] == 'f':
        groups.setdefault(current, set()).update(_index(path, t, lineno, nverts) for t in w[1:])
  return {g: np.asarray(sorted(v), np.int64) for g, v in groups.items()}


def write_off(path: str, vertices, faces) -> None:
  """Writes an ASCII .off triangle mesh (17 significant digits: read_off round-trips it)."""
  v = np.asarray(vertices, np.float64)
  f = np.asarray(faces, np.int64)
  lines = ['OFF', f'{len(v)} {len(f)} 0']
  lines += [f'{x:.17g} {y:.17g} {z:.17g}' for x, y, z in v]
  lines += [f'3 {a} {b} {c}' for a, b, c in f]
  with open(path, 'w') as fh:
    fh.write('\n'.join(lines) + '\n')


def read_stl(path: str, *, degenerate: str = 'drop'):
  with open(path, 'rb') as fh:
    data = fh.read()
  if len(data) >= 84:
    n_tri = struct.unpack('<I', data[80:84])[0]
    if 84 + 50 * n_tri == len(data):   # binary: 80-byte header, count, 50-byte records
      rec = np.frombuffer(data, np.dtype([('n', '<f4', 3), ('v', '<f4', (3, 3)), ('a', '<u2')]),
                          n_tri, 84)
      tri = rec['v'].astype(np.float64).reshape(-1, 3)
      return _check_mesh(tri, np.arange(len(tri)).reshape(-1, 3), path, degenerate)
  text = data.decode('ascii', 'replace')
  if not text.lstrip().startswith('solid'):
    raise DataFileError(path, 'neither a binary STL (80-byte header, count, 50 bytes per '
                        f'triangle: {len(data)} bytes do not fit) nor an ASCII one ("solid")')
  verts = []
  for lineno, line in enumerate(text.splitlines(), 1):
    w = line.split()
    if w and w[0] == 'vertex':
      if len(w) != 4:
        raise DataFileError(path, f'line {lineno}: "vertex x y z" expected, got {line.strip()!r}')
      verts.append(_floats(path, w[1:], lineno))
  if len(verts) % 3:
    raise DataFileError(path, f'ASCII STL has {len(verts)} vertices, not a multiple of 3 '
                        '(truncated facet?)')
  return _check_mesh(np.asarray(verts).reshape(-1, 3), np.arange(len(verts)).reshape(-1, 3),
                     path, degenerate)


def read_skn(path: str, *, degenerate: str = 'drop'):
  with open(path, 'rb') as fh:
    data = fh.read()
  if len(data) < 16:
    raise DataFileError(path, f'too short for a MuJoCo .skn header ({len(data)} bytes)')
  nv, nt, nf, _ = struct.unpack('<iiii', data[:16])
  need = 16 + 4 * (3 * nv + 2 * nt + 3 * nf)
  if min(nv, nt, nf) < 0 or len(data) < need:
    raise DataFileError(path, f'.skn header counts ({nv} vertices, {nt} texcoords, {nf} faces) '
                        f'exceed the file ({len(data)} bytes)')
  verts = np.frombuffer(data, '<f4', 3 * nv, 16).reshape(-1, 3)
  faces = np.frombuffer(data, '<i4', 3 * nf, 16 + 4 * (3 * nv + 2 * nt)).reshape(-1, 3)
  return _check_mesh(verts, faces.astype(np.int64), path, degenerate)


def read_skn_bones(path: str) -> list[dict]:
  """The bones of a MuJoCo `.skn` skin: after the mesh arrays (header `nvert ntex nface
  nbone`), per bone: name (char[40]), bindpos (3 × f32), bindquat (4 × f32, w x y z),
  count (i32), vertex ids (count × i32), weights (count × f32).  Returns
  [{'name', 'bindpos' (3,), 'bindquat' (4,), 'vertices' (c,) int64, 'weights' (c,)}]."""
  with open(path, 'rb') as fh:
    data = fh.read()
  if len(data) < 16:
    raise DataFileError(path, f'too short for a MuJoCo .skn header ({len(data)} bytes)')
  nv, nt, nf, nb = struct.unpack('<iiii', data[:16])
  off = 16 + 4 * (3 * nv + 2 * nt + 3 * nf)
  if min(nv, nt, nf, nb) < 0 or len(data) < off:
    raise DataFileError(path, f'.skn header counts ({nv}, {nt}, {nf}, {nb} bones) exceed '
                        f'the file ({len(data)} bytes)')
  bones = []
  for b in range(nb):
    if len(data) < off + 72:
      raise DataFileError(path, f'bone {b}: truncated header at byte {off}')
    name = data[off:off + 40].split(b'\0', 1)[0].decode('ascii', 'replace')
    bindpos = np.frombuffer(data, '<f4', 3, off + 40).astype(np.float64)
    bindquat = np.frombuffer(data, '<f4', 4, off + 52).astype(np.float64)
    (count,) = struct.unpack('<i', data[off + 68:off + 72])
    off += 72
    if count < 0 or len(data) < off + 8 * count:
      raise DataFileError(path, f'bone {b} ({name!r}): {count} vertex weights exceed the file')
    ids = np.frombuffer(data, '<i4', count, off).astype(np.int64)
    weights = np.frombuffer(data, '<f4', count, off + 4 * count).astype(np.float64)
    off += 8 * count
    if count and (ids.min() < 0 or ids.max() >= nv):
      raise DataFileError(path, f'bone {b} ({name!r}): vertex ids outside 0..{nv - 1}')
    bones.append(dict(name=name, bindpos=bindpos, bindquat=bindquat, vertices=ids,
                      weights=weights))
  if off != len(data):
    raise DataFileError(path, f'{len(data) - off} trailing bytes after {nb} bones')
  return bones


_OFF_HEADER = re.compile(r'(ST)?(C)?(N)?(4)?(n)?OFF')


def read_off(path: str, *, degenerate: str = 'drop'):
  """A Geomview .off mesh (see the module docstring); polygons are fan-triangulated."""
  with open(path, 'r', errors='replace') as fh:
    lines = [(i, line.split('#', 1)[0].split()) for i, line in enumerate(fh, 1)]
  lines = [(i, w) for i, w in lines if w]
  if not lines:
    raise DataFileError(path, 'empty .off file')
  lineno, words = lines[0]
  m = _OFF_HEADER.match(words[0])
  normals = texture = False
  if m:                                    # the keyword is optional in Geomview's spec
    if m.group(4) or m.group(5):
      raise DataFileError(path, f'line {lineno}: {words[0]!r} meshes (4D / nD) are not supported')
    texture, normals = bool(m.group(1)), bool(m.group(3))
    rest = words[0][m.end():]
    words = ([rest] if rest else []) + words[1:]
  elif not words[0].isdigit():
    raise DataFileError(path, f'line {lineno}: not an OFF file (header {words[0][:20]!r})')
  start = 1
  if not words:
    if len(lines) < 2:
      raise DataFileError(path, 'truncated .off file: no "nvertices nfaces nedges" line')
    (lineno, words), start = lines[1], 2
  try:
    counts = [int(x) for x in words[:3]]
  except ValueError:
    counts = []
  if len(counts) < 2 or min(counts) < 0:
    raise DataFileError(path, f'line {lineno}: "nvertices nfaces [nedges]" expected as '
                        f'non-negative integers, got {" ".join(words)[:80]!r}')
  nv, nf = counts[:2]
  body = lines[start:]
  if nv + nf > len(body):
    raise DataFileError(path, f'truncated .off file: the header declares {nv} vertices and '
                        f'{nf} faces but only {len(body)} data lines follow')
  need = 3 + 3 * normals + 2 * texture
  verts = []
  for lineno, w in body[:nv]:
    if len(w) < need:
      raise DataFileError(path, f'line {lineno}: a vertex needs {need} values'
                          f'{" (x y z + normal)" if normals else ""}, got {len(w)}')
    verts.append(_floats(path, w[:3], lineno))
  polys = []
  for lineno, w in body[nv:nv + nf]:
    try:
      n = int(w[0])
      idx = [int(x) for x in w[1:1 + n]]
    except ValueError:
      raise DataFileError(path, f'line {lineno}: a face is "k i_1 ... i_k", got '
                          f'{" ".join(w)[:80]!r}') from None
    if n < 0 or len(idx) != n:
      raise DataFileError(path, f'line {lineno}: the face declares {n} vertices, '
                          f'{len(w) - 1} values follow')
    polys.append(idx)                    # trailing values: the face's colour
  return _check_mesh(np.asarray(verts, np.float64).reshape(-1, 3), polys, path, degenerate)


READERS = {'.ply': read_ply, '.obj': read_obj, '.off': read_off, '.stl': read_stl,
           '.skn': read_skn}


def read_mesh(path: str, *, degenerate: str = 'drop'):
  """(vertices (n, 3) float64, triangles (m, 3) int64) from any supported file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'no mesh file at {path}')
  ext = os.path.splitext(path)[1].lower()
  if ext not in READERS:
    raise DataFileError(path, f'unsupported mesh extension {ext!r} (known: {sorted(READERS)})')
  return READERS[ext](path, degenerate=degenerate)


def unique_vertices(vertices, faces=None, *, return_inverse: bool = False):
  """Distinct vertices (as upstream `np.unique(..., axis=0)`) and re-indexed faces;
  with `return_inverse`, also (n,) the distinct vertex of every input vertex."""
  uniq, inverse = np.unique(np.asarray(vertices), axis=0, return_inverse=True)
  inverse = inverse.ravel()
  out = (uniq,) if faces is None else (uniq, inverse[np.asarray(faces)])
  out = out + (inverse,) if return_inverse else out
  return out if len(out) > 1 else out[0]


def read_point_cloud(path: str) -> np.ndarray:
  """A bone/mesh file as the point cloud of its unique vertices (BSE pre-processing)."""
  return unique_vertices(read_mesh(path)[0])
