"""The PLY polygon file format (Turk 1994; ascii, binary little- and big-endian).

`parse_ply(path)` returns the vertex positions and the face polygons (lists of vertex
indices, not yet triangulated: `meshes.read_ply` does that and the mesh checks).
Every defect is a `DataFileError` naming the file: a missing magic / format /
end_header line, an unknown keyword or property type (with its header line number),
a vertex element without x, y or z, a face element without `vertex_indices`,
a body shorter than the header's counts (truncated: checked against the bytes or
tokens present BEFORE anything is allocated, so a header claiming 10^12 vertices is
refused at once), non-numeric ascii tokens and non-integer face indices.
"""

from __future__ import annotations

import os

import numpy as np

from jaxvision.data.errors import DataFileError

TYPES = {
    'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1', 'short': 'i2', 'int16': 'i2',
    'ushort': 'u2', 'uint16': 'u2', 'int': 'i4', 'int32': 'i4', 'uint': 'u4', 'uint32': 'u4',
    'float': 'f4', 'float32': 'f4', 'double': 'f8', 'float64': 'f8',
}
FORMATS = ('ascii', 'binary_little_endian', 'binary_big_endian')
FACE_LISTS = ('vertex_indices', 'vertex_index')
_MAX_HEADER_LINES = 10_000


def _type(path, word: str, lineno: int) -> str:
  if word not in TYPES:
    raise DataFileError(path, f'PLY header line {lineno}: unknown property type {word!r} '
                        f'(known: {", ".join(sorted(TYPES))})')
  return TYPES[word]


def _count(path, word: str, lineno: int) -> int:
  try:
    n = int(word)
  except ValueError:
    n = -1
  if n < 0:
    raise DataFileError(path, f'PLY header line {lineno}: element count {word!r} is not a '
                        'non-negative integer')
  return n


def parse_header(fh, path):
  """(format, elements) from the header; elements: [{'name', 'count', 'props'}]."""
  if fh.readline().rstrip(b'\r\n') != b'ply':
    raise DataFileError(path, 'not a PLY file (the first line is not "ply")')
  fmt, elements = None, []
  for lineno in range(2, _MAX_HEADER_LINES):
    line = fh.readline()
    if not line:
      raise DataFileError(path, 'PLY header has no end_header line (truncated header)')
    words = line.decode('ascii', 'replace').split()
    if not words or words[0] in ('comment', 'obj_info'):
      continue
    key = words[0]
    if key == 'end_header':
      break
    if key == 'format':
      if len(words) != 3 or words[1] not in FORMATS:
        raise DataFileError(path, f'PLY header line {lineno}: unsupported format '
                            f'{" ".join(words[1:])!r} (known: {", ".join(FORMATS)})')
      fmt = words[1]
    elif key == 'element':
      if len(words) != 3:
        raise DataFileError(path, f'PLY header line {lineno}: "element <name> <count>" '
                            f'expected, got {line.strip()!r}')
      elements.append({'name': words[1], 'count': _count(path, words[2], lineno),
                       'props': []})
    elif key == 'property':
      if not elements:
        raise DataFileError(path, f'PLY header line {lineno}: property before any element')
      if len(words) == 5 and words[1] == 'list':
        elements[-1]['props'].append(
            (words[4], 'list', _type(path, words[2], lineno), _type(path, words[3], lineno)))
      elif len(words) == 3:
        elements[-1]['props'].append((words[2], _type(path, words[1], lineno)))
      else:
        raise DataFileError(path, f'PLY header line {lineno}: malformed property line '
                            f'{line.strip()!r}')
    else:
      raise DataFileError(path, f'PLY header line {lineno}: unknown keyword {key!r}')
  else:
    raise DataFileError(path, f'PLY header longer than {_MAX_HEADER_LINES} lines')
  if fmt is None:
    raise DataFileError(path, 'PLY header has no format line')
  return fmt, elements


def _ascii_value(path, tok: bytes, el: str, integer: bool):
  try:
    x = float(tok)
  except ValueError:
    raise DataFileError(path, f'PLY element {el!r}: non-numeric value {tok[:40]!r}') from None
  if not integer:
    return x
  if not (np.isfinite(x) and x == int(x)):
    raise DataFileError(path, f'PLY element {el!r}: {tok[:40]!r} is not an integer')
  return int(x)


def _read_ascii(path, body: bytes, elements):
  tokens, pos, out = body.split(), 0, {}
  for el in elements:
    props, n = el['props'], el['count']
    if n * len(props) > len(tokens) - pos:   # each property takes >= 1 token
      raise DataFileError(path, f'truncated ascii PLY: element {el["name"]!r} declares {n} '
                          f'rows of {len(props)} values, {len(tokens) - pos} tokens remain')
    if all(p[1] != 'list' for p in props):
      block = tokens[pos:pos + n * len(props)]
      pos += len(block)
      try:
        arr = np.array(block, dtype=np.float64).reshape(n, len(props))
      except ValueError:
        for tok in block:
          _ascii_value(path, tok, el['name'], False)
        raise
      out[el['name']] = {p[0]: arr[:, i] for i, p in enumerate(props)}
      continue
    cols = {p[0]: [] for p in props}
    for _ in range(n):
      for prop in props:
        if pos >= len(tokens):
          raise DataFileError(path, f'truncated ascii PLY: element {el["name"]!r} ends early')
        if prop[1] == 'list':
          cnt = _ascii_value(path, tokens[pos], el['name'], True)
          if cnt < 0 or pos + 1 + cnt > len(tokens):
            raise DataFileError(path, f'truncated ascii PLY: element {el["name"]!r} has a list '
                                f'of {cnt} values with {len(tokens) - pos - 1} tokens left')
          cols[prop[0]].append([_ascii_value(path, t, el['name'], True)
                                for t in tokens[pos + 1:pos + 1 + cnt]])
          pos += 1 + cnt
        else:
          cols[prop[0]].append(_ascii_value(path, tokens[pos], el['name'], False))
          pos += 1
    out[el['name']] = cols
  return out


def _read_binary(path, body: bytes, elements, end: str):
  pos, out = 0, {}
  for el in elements:
    props, n = el['props'], el['count']
    if not props:
      out[el['name']] = {}
      continue
    scalar = np.dtype([(f'p{i}', end + (p[1] if p[1] != 'list' else p[2]))
                       for i, p in enumerate(props)])
    if n * scalar.itemsize > len(body) - pos:   # a row is at least its scalars/list counts
      raise DataFileError(path, f'truncated binary PLY: element {el["name"]!r} declares {n} '
                          f'rows of >= {scalar.itemsize} bytes, {len(body) - pos} bytes remain')
    if all(p[1] != 'list' for p in props):
      arr = np.frombuffer(body, scalar, n, pos)
      pos += scalar.itemsize * n
      out[el['name']] = {p[0]: arr[f'p{i}'].astype(np.float64) for i, p in enumerate(props)}
      continue
    if len(props) == 1 and n:                # the usual face element: try fixed-size lists
      cdt, idt = np.dtype(end + props[0][2]), np.dtype(end + props[0][3])
      k = int(np.frombuffer(body, cdt, 1, pos)[0])
      if 0 <= k and pos + (cdt.itemsize + k * idt.itemsize) * n <= len(body):
        rec = np.dtype([('n', cdt), ('i', idt, (k,))])
        arr = np.frombuffer(body, rec, n, pos)
        if np.all(arr['n'] == k):
          pos += rec.itemsize * n
          out[el['name']] = {props[0][0]: arr['i'].reshape(n, k).astype(np.int64)}
          continue
    cols = {p[0]: [] for p in props}
    for _ in range(n):
      for prop in props:
        if prop[1] == 'list':
          cdt, idt = np.dtype(end + prop[2]), np.dtype(end + prop[3])
          if pos + cdt.itemsize > len(body):
            raise DataFileError(path, f'truncated binary PLY in element {el["name"]!r}')
          cnt = int(np.frombuffer(body, cdt, 1, pos)[0])
          pos += cdt.itemsize
          if cnt < 0 or pos + idt.itemsize * cnt > len(body):
            raise DataFileError(path, f'truncated binary PLY: element {el["name"]!r} has a '
                                f'list of {cnt} values past the end of the file')
          cols[prop[0]].append(np.frombuffer(body, idt, cnt, pos).tolist())
          pos += idt.itemsize * cnt
        else:
          dt = np.dtype(end + prop[1])
          if pos + dt.itemsize > len(body):
            raise DataFileError(path, f'truncated binary PLY in element {el["name"]!r}')
          cols[prop[0]].append(float(np.frombuffer(body, dt, 1, pos)[0]))
          pos += dt.itemsize
    out[el['name']] = cols
  return out


def parse_ply(path: str):
  """(vertices (n, 3) float64, polygons: list of index lists or an (m, k) int array)."""
  with open(path, 'rb') as fh:
    fmt, elements = parse_header(fh, path)
    body = fh.read()
  names = [e['name'] for e in elements]
  if 'vertex' not in names:
    raise DataFileError(path, f'PLY file has no vertex element (elements: {names})')
  vprops = [p[0] for p in elements[names.index('vertex')]['props']]
  for axis in 'xyz':
    if axis not in vprops:
      raise DataFileError(path, f'PLY vertex element has no {axis!r} property '
                          f'(properties: {vprops})')
  if 'face' in names:
    fprops = [p[0] for p in elements[names.index('face')]['props']]
    if not any(p in fprops for p in FACE_LISTS):
      raise DataFileError(path, f'PLY face element has no vertex_indices list '
                          f'(properties: {fprops})')
  if fmt == 'ascii':
    data = _read_ascii(path, body, elements)
  else:
    data = _read_binary(path, body, elements, '<' if fmt == 'binary_little_endian' else '>')
  vertex = data['vertex']
  try:
    vertices = np.stack([np.asarray(vertex[a], np.float64) for a in 'xyz'], axis=1)
  except (ValueError, TypeError):
    raise DataFileError(path, 'PLY vertex x, y, z must be scalar properties') from None
  faces = []
  if 'face' in data:
    faces = next(data['face'][p] for p in FACE_LISTS if p in data['face'])
  return vertices.reshape(-1, 3), faces


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
