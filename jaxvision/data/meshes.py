"""Readers for triangle meshes: .ply (ascii / binary), .obj, .stl (ascii / binary), .skn.

Bone surfaces in the Coupled Laplacian BSE benchmark (Bastico et al., CVPR 2024,
Sec. 5; upstream `data/prepare_bse.py`) are meshes turned into point clouds of their
UNIQUE vertices (`unique_vertices`).  `.skn` is MuJoCo's binary skin format (dm_control
ships the dog and rodent skins): little-endian int32 counts (nvertex, ntexcoord, nface,
nbone), float32 vertices (3 each), float32 texcoords (2 each), int32 faces (3 each),
then per bone a 40-byte name, bind pose/quaternion and vertex weights (skipped here).

`packaged_file` (from `jaxvision.data.packaged`) finds the meshes that dm_control and
pyvista ship without importing those packages.
"""

from __future__ import annotations

import os
import struct

from jaxvision.data.packaged import packaged_file  # pylint: disable=unused-import
import numpy as np

_PLY_TYPES = {
    'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1', 'short': 'i2', 'int16': 'i2',
    'ushort': 'u2', 'uint16': 'u2', 'int': 'i4', 'int32': 'i4', 'uint': 'u4', 'uint32': 'u4',
    'float': 'f4', 'float32': 'f4', 'double': 'f8', 'float64': 'f8',
}


def _check_mesh(vertices, faces, path):
  v = np.asarray(vertices, np.float64).reshape(-1, 3)
  f = np.asarray(faces, np.int64).reshape(-1, 3)
  if v.shape[0] == 0:
    raise ValueError(f'{path}: the mesh has no vertices')
  if not np.all(np.isfinite(v)):
    raise ValueError(f'{path}: the mesh has non-finite vertex coordinates')
  if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
    raise ValueError(f'{path}: a face refers to a vertex index outside 0..{v.shape[0] - 1}')
  return v, f


def _triangulate(polys):
  tris = []
  for p in polys:
    if len(p) < 3:
      continue
    for i in range(1, len(p) - 1):
      tris.append((p[0], p[i], p[i + 1]))
  return np.asarray(tris, np.int64).reshape(-1, 3)


def read_ply(path: str):
  with open(path, 'rb') as fh:
    if fh.readline().strip() != b'ply':
      raise ValueError(f'{path}: not a PLY file (no "ply" magic line)')
    fmt, elements = None, []
    while True:
      line = fh.readline()
      if not line:
        raise ValueError(f'{path}: PLY header has no end_header')
      words = line.decode('ascii', 'replace').split()
      if not words or words[0] in ('comment', 'obj_info'):
        continue
      if words[0] == 'format':
        fmt = words[1]
      elif words[0] == 'element':
        elements.append({'name': words[1], 'count': int(words[2]), 'props': []})
      elif words[0] == 'property':
        if words[1] == 'list':
          elements[-1]['props'].append((words[4], 'list', _PLY_TYPES[words[2]], _PLY_TYPES[words[3]]))
        else:
          elements[-1]['props'].append((words[2], _PLY_TYPES[words[1]]))
      elif words[0] == 'end_header':
        break
    body = fh.read()
  if fmt not in ('ascii', 'binary_little_endian', 'binary_big_endian'):
    raise ValueError(f'{path}: unsupported PLY format {fmt!r}')
  vertices, faces = None, []
  if fmt == 'ascii':
    tokens = iter(body.split())
    for el in elements:
      rows = []
      for _ in range(el['count']):
        row = []
        for prop in el['props']:
          if prop[1] == 'list':
            cnt = int(next(tokens))
            row.append([float(next(tokens)) for _ in range(cnt)])
          else:
            row.append(float(next(tokens)))
        rows.append(row)
      if el['name'] == 'vertex':
        names = [p[0] for p in el['props']]
        vertices = np.array([[r[names.index(a)] for a in 'xyz'] for r in rows])
      elif el['name'] == 'face':
        faces = [list(map(int, r[0])) for r in rows]
  else:
    end = '<' if fmt == 'binary_little_endian' else '>'
    pos = 0
    for el in elements:
      if all(p[1] != 'list' for p in el['props']):
        dt = np.dtype([(p[0], end + p[1]) for p in el['props']])
        arr = np.frombuffer(body, dt, el['count'], pos)
        pos += dt.itemsize * el['count']
        if el['name'] == 'vertex':
          vertices = np.stack([arr[a].astype(np.float64) for a in 'xyz'], 1)
        continue
      rows = []
      for _ in range(el['count']):
        row = None
        for prop in el['props']:
          if prop[1] == 'list':
            cdt, idt = np.dtype(end + prop[2]), np.dtype(end + prop[3])
            cnt = int(np.frombuffer(body, cdt, 1, pos)[0])
            pos += cdt.itemsize
            vals = np.frombuffer(body, idt, cnt, pos)
            pos += idt.itemsize * cnt
            if prop[0] in ('vertex_indices', 'vertex_index'):
              row = vals.tolist()
          else:
            pos += np.dtype(prop[1]).itemsize
        rows.append(row)
      if el['name'] == 'face':
        faces = rows
  if vertices is None:
    raise ValueError(f'{path}: PLY file has no vertex element')
  return _check_mesh(vertices, _triangulate(faces), path)


def read_obj(path: str):
  verts, polys = [], []
  with open(path, 'r', errors='replace') as fh:
    for line in fh:
      w = line.split()
      if not w:
        continue
      if w[0] == 'v':
        verts.append([float(x) for x in w[1:4]])
      elif w[0] == 'f':
        idx = [int(t.split('/')[0]) for t in w[1:]]
        polys.append([i - 1 if i > 0 else len(verts) + i for i in idx])
  return _check_mesh(verts, _triangulate(polys), path)


def read_stl(path: str):
  with open(path, 'rb') as fh:
    data = fh.read()
  if len(data) >= 84:
    n_tri = struct.unpack('<I', data[80:84])[0]
    if 84 + 50 * n_tri == len(data):   # binary: 80-byte header, count, 50-byte records
      rec = np.frombuffer(data, np.dtype([('n', '<f4', 3), ('v', '<f4', (3, 3)), ('a', '<u2')]),
                          n_tri, 84)
      tri = rec['v'].astype(np.float64).reshape(-1, 3)
      return _check_mesh(tri, np.arange(len(tri)).reshape(-1, 3), path)
  text = data.decode('ascii', 'replace')
  if not text.lstrip().startswith('solid'):
    raise ValueError(f'{path}: neither a binary STL (size mismatch) nor an ASCII one')
  verts = [[float(x) for x in line.split()[1:4]] for line in text.splitlines()
           if line.strip().startswith('vertex')]
  return _check_mesh(verts, np.arange(len(verts)).reshape(-1, 3), path)


def read_skn(path: str):
  with open(path, 'rb') as fh:
    data = fh.read()
  if len(data) < 16:
    raise ValueError(f'{path}: too short for a MuJoCo .skn header')
  nv, nt, nf, _ = struct.unpack('<iiii', data[:16])
  need = 16 + 4 * (3 * nv + 2 * nt + 3 * nf)
  if min(nv, nt, nf) < 0 or len(data) < need:
    raise ValueError(f'{path}: .skn header counts ({nv} vertices, {nf} faces) exceed the file')
  verts = np.frombuffer(data, '<f4', 3 * nv, 16).reshape(-1, 3)
  faces = np.frombuffer(data, '<i4', 3 * nf, 16 + 4 * (3 * nv + 2 * nt)).reshape(-1, 3)
  return _check_mesh(verts, faces, path)


READERS = {'.ply': read_ply, '.obj': read_obj, '.stl': read_stl, '.skn': read_skn}


def read_mesh(path: str):
  """(vertices (n, 3) float64, triangles (m, 3) int64) from any supported file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'no mesh file at {path}')
  ext = os.path.splitext(path)[1].lower()
  if ext not in READERS:
    raise ValueError(f'{path}: unsupported mesh extension {ext!r} (known: {sorted(READERS)})')
  return READERS[ext](path)


def unique_vertices(vertices, faces=None):
  """Distinct vertices (as upstream `np.unique(..., axis=0)`) and re-indexed faces."""
  uniq, inverse = np.unique(np.asarray(vertices), axis=0, return_inverse=True)
  if faces is None:
    return uniq
  return uniq, inverse.ravel()[np.asarray(faces)]


def read_point_cloud(path: str) -> np.ndarray:
  """A bone/mesh file as the point cloud of its unique vertices (BSE pre-processing)."""
  return unique_vertices(read_mesh(path)[0])


def write_ply(path: str, vertices, faces=None) -> None:
  """Binary little-endian PLY of float32 vertices (and int32 triangles if given)."""
  v = np.asarray(vertices, '<f4').reshape(-1, 3)
  f = None if faces is None else np.asarray(faces, '<i4').reshape(-1, 3)
  header = ['ply', 'format binary_little_endian 1.0', f'element vertex {len(v)}',
            'property float x', 'property float y', 'property float z']
  if f is not None:
    header += [f'element face {len(f)}', 'property list uchar int vertex_indices']
  header.append('end_header')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'wb') as fh:
    fh.write(('\n'.join(header) + '\n').encode('ascii'))
    fh.write(v.tobytes())
    if f is not None:
      rec = np.zeros(len(f), np.dtype([('n', 'u1'), ('i', '<i4', 3)]))
      rec['n'], rec['i'] = 3, f
      fh.write(rec.tobytes())
