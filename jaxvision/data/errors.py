"""Refusing bad data files by name: `DataFileError` and checked `.npy` / `.npz` reading.

Every reader of a file format in jaxvision (meshes, HumanML3D, Babel, DeepMimic mocap,
MVTec 3D-AD, word vectors, checkpoints) raises `DataFileError(path, problem)` for a
file it cannot use: the message starts with the file's path and says what is wrong
(`<path>: <problem>`).  It subclasses `ValueError`, so callers that caught the
readers' `ValueError`s keep working.

`read_npy` / `read_npz` read NumPy files without pickles and bound what they allocate:
the array header is parsed first and the byte count it declares must match the bytes
the file (or zip member) holds, so a truncated file, or a 100-byte file that claims a
terabyte, is refused before any allocation.  Arrays of object, string or complex dtype
are refused (`kinds`), and by default so are NaN / Inf values (`finite`).
"""

from __future__ import annotations

import math
import os
import zipfile
from typing import Any, Callable

import numpy as np

REAL_KINDS = 'biuf'   # bool, signed / unsigned int, float: what numeric readers accept
_MAX_RATIO = 1100     # deflate's maximal expansion is about 1032:1


class DataFileError(ValueError):
  """A data file that a reader refuses: `str(e)` is '<path>: <problem>'."""

  def __init__(self, path: Any, problem: str):
    self.path, self.problem = os.fspath(path) if _is_path(path) else str(path), problem
    super().__init__(f'{self.path}: {problem}')


def _is_path(path: Any) -> bool:
  return isinstance(path, (str, bytes, os.PathLike))


def require_file(path: Any, what: str = 'data file') -> None:
  """FileNotFoundError naming `path` unless it is an existing regular file."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} not found: {path}')


def check_array(value: Any, path: Any, what: str = 'array', *, ndim: int | None = None,
                shape: tuple[int | None, ...] | None = None, finite: bool = True,
                kinds: str = REAL_KINDS, nonempty: bool = False) -> np.ndarray:
  """`value` as an array, or `DataFileError` naming `path`, `what` and the first defect."""
  arr = np.asarray(value)
  if arr.dtype.kind not in kinds:
    raise DataFileError(path, f'{what} has dtype {arr.dtype}, expected a real numeric '
                        'dtype (complex, string and object arrays are refused)')
  if ndim is not None and arr.ndim != ndim:
    raise DataFileError(path, f'{what} must have {ndim} dims, got shape {arr.shape}')
  if shape is not None and (arr.ndim != len(shape) or any(
      s is not None and s != a for s, a in zip(shape, arr.shape))):
    want = '(' + ', '.join('*' if s is None else str(s) for s in shape) + ')'
    raise DataFileError(path, f'{what} must have shape {want}, got {arr.shape}')
  if nonempty and arr.size == 0:
    raise DataFileError(path, f'{what} is empty (shape {arr.shape})')
  if finite and arr.dtype.kind == 'f':
    bad = ~np.isfinite(arr)
    if bad.any():
      first = tuple(int(i) for i in np.argwhere(bad)[0])
      raise DataFileError(path, f'{what} has {int(bad.sum())} non-finite values (NaN/Inf), '
                          f'the first at index {first}: {arr[first]}')
  return arr


def _header(fh, path: Any, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
  """(shape, fortran_order, dtype, data bytes) of a .npy stream positioned at its start."""
  fmt = np.lib.format
  try:
    version = fmt.read_magic(fh)
    if version == (1, 0):
      shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
      shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    else:
      raise ValueError(f'unknown .npy format version {version}')
  except Exception as e:  # pylint: disable=broad-except  # numpy's header parser raises
    # ValueError, EOFError, SyntaxError, tokenize.TokenError, ... on damaged headers.
    raise DataFileError(path, f'{where}not a readable .npy array (empty, truncated or '
                        f'corrupt header: {e})') from None
  if dtype.hasobject:
    raise DataFileError(path, f'{where}holds Python objects (a pickle); refused')
  return shape, fortran, dtype, math.prod(shape) * dtype.itemsize


def read_npy(path: Any, what: str = 'array', *, mmap: bool = False,
             **checks: Any) -> np.ndarray:
  """A `.npy` array checked by `check_array(**checks)`; refuses truncated/oversized files."""
  require_file(path, '.npy file')
  size = os.path.getsize(path)
  with open(path, 'rb') as fh:
    _, _, _, nbytes = _header(fh, path, '')
    offset = fh.tell()
  if offset + nbytes != size:
    raise DataFileError(path, f'the .npy header declares {nbytes} bytes of data but the '
                        f'file holds {size - offset} (truncated or not a single array)')
  try:
    arr = np.load(path, mmap_mode='r' if mmap else None, allow_pickle=False)
  except (ValueError, EOFError, OSError) as e:
    raise DataFileError(path, f'not a readable .npy array ({e})') from None
  return check_array(arr, path, what, **checks)


def read_npz(path: Any, *, check: Callable[[str, np.ndarray], Any] | None = None,
             finite: bool = True, kinds: str = REAL_KINDS) -> dict[str, np.ndarray]:
  """{name: array} of an `.npz` (path or binary file object), every member validated.

  Each member's declared size must match its uncompressed size in the zip directory
  (no allocation beyond what the file holds), its dtype must be one of `kinds` and, with
  `finite`, its values finite.  `check(name, array)` may add per-member checks.
  """
  if _is_path(path):
    require_file(path, '.npz file')
  name = path if _is_path(path) else getattr(path, 'name', '<file object>')
  archive_size = os.path.getsize(path) if _is_path(path) else None
  try:
    zf = zipfile.ZipFile(path)
  except Exception as e:  # pylint: disable=broad-except  # zipfile raises many types
    raise DataFileError(name, f'not a readable .npz (zip) archive ({e})') from None
  out = {}
  with zf:
    for info in zf.infolist():
      key = info.filename[:-4] if info.filename.endswith('.npy') else info.filename
      where = f'member {key!r}: '
      # Deflate expands at most ~1032x: a larger claimed size is a corrupt directory, and
      # would otherwise size the allocation below.
      if (info.file_size > _MAX_RATIO * info.compress_size + 1024
          or (archive_size is not None and info.compress_size > archive_size)):
        raise DataFileError(name, f'{where}claims {info.file_size} bytes from '
                            f'{info.compress_size} compressed bytes (corrupt archive)')
      try:
        with zf.open(info) as fh:
          shape, fortran, dtype, nbytes = _header(fh, name, where)
          data_bytes = info.file_size - fh.tell()
          if nbytes != data_bytes:
            raise DataFileError(name, f'{where}the header declares {nbytes} bytes of data '
                                f'but the archive holds {data_bytes}')
          raw = bytearray(nbytes)
          got = fh.readinto(raw) if nbytes else 0
      except DataFileError:
        raise
      except Exception as e:  # pylint: disable=broad-except  # zipfile/zlib raise many types
        raise DataFileError(name, f'{where}unreadable (truncated or corrupt archive: '
                            f'{type(e).__name__}: {e})') from None
      if got != nbytes:
        raise DataFileError(name, f'{where}truncated ({got} of {nbytes} bytes)')
      arr = np.frombuffer(raw, dtype).reshape(shape, order='F' if fortran else 'C')
      out[key] = check_array(arr, name, f'array {key!r}', finite=finite, kinds=kinds)
      if check is not None:
        check(key, out[key])
  return out
