"""Property-based fuzzing of every file reader (issue 10, item 14).

Each test writes a VALID file of one format (small, from real or generated geometry),
then lets hypothesis damage it: truncation, overwritten or deleted byte ranges, and
inserted tokens that parsers trip on ('nan', 'inf', '-1', '1e400', huge counts, NUL,
newlines).  Whatever comes out, the reader must either

* return a result that passes the format's invariants (finite values, in-range
  indices, the documented shapes) - never garbage, or
* raise a `ValueError` (DataFileError) whose message names the file,

and must do so within `ALARM_S` seconds (no hang) and with a peak Python/NumPy
allocation (tracemalloc) below `MAX_ALLOC` bytes (no allocation sized by a corrupt
header).  Named regressions live in test_*_reader_errors.py.  Examples are
derandomised (reproducible in CI) and few: the whole file runs in about 20 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import struct
import tracemalloc
import warnings

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import pytest

from jaxvision.data import babel
from jaxvision.data import deepmimic as dm
from jaxvision.data import errors
from jaxvision.data import humanml3d
from jaxvision.data import meshes
from jaxvision.data import mvtec3d
from jaxvision.data import word_vectors as wv
from jaxvision.nn import convert_torch_state_dict as conv

ALARM_S = 10
MAX_ALLOC = 64 * 2**20
# JAXVISION_FUZZ_EXAMPLES=2000 JAXVISION_FUZZ_RANDOM=1 for a longer, non-repeating hunt.
FUZZ = settings(max_examples=int(os.environ.get('JAXVISION_FUZZ_EXAMPLES', '40')),
                deadline=3000, derandomize=not os.environ.get('JAXVISION_FUZZ_RANDOM'),
                database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

TOKENS = [b' nan', b' inf', b' -inf', b' -1', b' 0', b' 1e400', b' 4294967295',
          b' 99999999999999999999', b' 1.5', b'\x00', b'\n', b' x', b'#', b'/', b' 3']


@st.composite
def damaged(draw, valid: bytes):
  """`valid` after 1-3 random edits (truncate, overwrite, delete, insert a token)."""
  data = bytearray(valid)
  for _ in range(draw(st.integers(1, 3))):
    op = draw(st.sampled_from(['truncate', 'overwrite', 'delete', 'insert']))
    i = draw(st.integers(0, len(data)))
    if op == 'truncate':
      del data[i:]
    elif op == 'overwrite':
      chunk = draw(st.binary(min_size=1, max_size=8))
      data[i:i + len(chunk)] = chunk
    elif op == 'delete':
      del data[i:i + draw(st.integers(1, 16))]
    else:
      data[i:i] = draw(st.sampled_from(TOKENS))
  return bytes(data)


@contextlib.contextmanager
def _bounded():
  """Fails on a hang (SIGALRM) or a peak allocation above MAX_ALLOC."""
  def alarm(*_):
    raise TimeoutError(f'reader ran longer than {ALARM_S} s')
  old = signal.signal(signal.SIGALRM, alarm)
  signal.alarm(ALARM_S)
  tracemalloc.start()
  try:
    yield
  finally:
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
  assert peak < MAX_ALLOC, f'the reader allocated {peak / 2**20:.0f} MiB'


def check_reader(read, path, invariant):
  """`read(path)` returns something `invariant` accepts, or refuses naming `path`."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', meshes.MeshWarning)
    try:
      with _bounded():
        out = read(path)
    except (ValueError, FileNotFoundError) as e:
      assert str(path) in str(e), f'{type(e).__name__} without the file name: {e}'
      return
  invariant(out)


# --- meshes ------------------------------------------------------------------------------

def _mesh_ok(out):
  v, f = out
  assert v.dtype == np.float64 and v.ndim == 2 and v.shape[1] == 3 and len(v)
  assert np.all(np.isfinite(v))
  assert f.dtype == np.int64 and f.ndim == 2 and f.shape[1] == 3
  assert f.size == 0 or (f.min() >= 0 and f.max() < len(v))
  assert not np.any((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2]))


def _small_mesh():
  v, f = meshes.read_mesh(meshes.packaged_file('pyvista', 'examples/ant.ply'))
  keep = f[:12]
  used, inverse = np.unique(keep, return_inverse=True)
  return v[used], inverse.reshape(-1, 3)


def _formats(tmp_path):
  v, f = _small_mesh()
  out = {}
  meshes.write_ply(str(tmp_path / 'b.ply'), v, f)
  out['binary.ply'] = (tmp_path / 'b.ply').read_bytes()
  head = ['ply', 'format ascii 1.0', f'element vertex {len(v)}', 'property float x',
          'property float y', 'property float z', f'element face {len(f)}',
          'property list uchar int vertex_indices', 'end_header']
  out['ascii.ply'] = '\n'.join(head + [' '.join(map(str, r)) for r in v] +
                               [f'3 {a} {b} {c}' for a, b, c in f]).encode() + b'\n'
  out['mesh.obj'] = (''.join(f'v {a} {b} {c}\n' for a, b, c in v) +
                     ''.join(f'f {a + 1} {b + 1}/1 {c + 1}\n' for a, b, c in f)).encode()
  out['mesh.off'] = (f'OFF\n# fuzz\n{len(v)} {len(f)} 0\n' +
                     ''.join(f'{a} {b} {c}\n' for a, b, c in v) +
                     ''.join(f'3 {a} {b} {c}\n' for a, b, c in f)).encode()
  tri = v[f]
  out['ascii.stl'] = ('solid s\n' + ''.join(
      'facet normal 0 0 0\nouter loop\n' + ''.join(f'vertex {a} {b} {c}\n' for a, b, c in t)
      + 'endloop\nendfacet\n' for t in tri) + 'endsolid s\n').encode()
  rec = np.zeros(len(tri), np.dtype([('n', '<f4', 3), ('v', '<f4', (3, 3)), ('a', '<u2')]))
  rec['v'] = tri
  out['binary.stl'] = b'\0' * 80 + struct.pack('<I', len(tri)) + rec.tobytes()
  out['skin.skn'] = (struct.pack('<iiii', len(v), 0, len(f), 0) + v.astype('<f4').tobytes()
                     + f.astype('<i4').tobytes())
  return out


@pytest.mark.parametrize('name', ['binary.ply', 'ascii.ply', 'mesh.obj', 'mesh.off',
                                  'ascii.stl', 'binary.stl', 'skin.skn'])
def test_mesh_readers_survive_damaged_files(tmp_path, name):
  valid = _formats(tmp_path)[name]
  path = tmp_path / ('fuzz' + name[name.index('.'):])
  path.write_bytes(valid)
  _mesh_ok(meshes.read_mesh(str(path)))      # the undamaged file reads

  @FUZZ
  @given(damaged(valid))
  def run(data):
    path.write_bytes(data)
    check_reader(lambda p: meshes.read_mesh(str(p)), path, _mesh_ok)
  run()


@FUZZ
@given(st.binary(max_size=200))
def test_mesh_readers_survive_random_bytes(tmp_path_factory, data):
  folder = tmp_path_factory.mktemp('rand')
  for ext, magic in (('.ply', b'ply\n'), ('.obj', b''), ('.off', b'OFF\n'), ('.stl', b''),
                     ('.skn', b'')):
    path = folder / ('r' + ext)
    path.write_bytes(magic + data)
    check_reader(lambda p: meshes.read_mesh(str(p)), path, _mesh_ok)


# --- .npy / .npz and checkpoints -------------------------------------------------------------

def _finite_arrays(out):
  for value in (out.values() if isinstance(out, dict) else [out]):
    assert value.dtype.kind in errors.REAL_KINDS and np.all(np.isfinite(value))


def _npy(array):
  import io  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  np.save(buf, array)
  return buf.getvalue()


@FUZZ
@given(st.data())
def test_npy_reader_survives_damaged_files(tmp_path_factory, data):
  path = tmp_path_factory.mktemp('npy') / 'x.npy'
  shape = data.draw(st.lists(st.integers(0, 5), max_size=3))
  dtype = data.draw(st.sampled_from(['<f4', '>f8', '<i2', '|u1', '<c8', '|b1']))
  path.write_bytes(data.draw(damaged(_npy(np.ones(shape, dtype)))))
  check_reader(errors.read_npy, path, _finite_arrays)


@FUZZ
@given(st.data())
def test_npz_checkpoint_readers_survive_damaged_files(tmp_path_factory, data):
  path = tmp_path_factory.mktemp('npz') / 'x.npz'
  rng = np.random.default_rng(data.draw(st.integers(0, 3)))
  flat = {'a/kernel': rng.normal(size=(3, 4)).astype(np.float32),
          'b.weight': np.arange(6, dtype=np.int32).reshape(2, 3)}
  with open(path, 'wb') as fh:
    (np.savez_compressed if data.draw(st.booleans()) else np.savez)(fh, **flat)
  path.write_bytes(data.draw(damaged(path.read_bytes())))
  check_reader(conv.read_state_dict, path, _finite_arrays)


@FUZZ
@given(st.data())
def test_safetensors_reader_survives_damaged_files(tmp_path_factory, data):
  path = tmp_path_factory.mktemp('st') / 'm.safetensors'
  header = json.dumps({'t': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]}})
  valid = struct.pack('<Q', len(header)) + header.encode() + np.ones(6, '<f4').tobytes()
  path.write_bytes(data.draw(damaged(valid)))
  def read(p):
    try:
      return wv.read_safetensors_tensor(str(p), 't')
    except KeyError as e:   # a damaged name: the tensor is not there, said with the path
      raise ValueError(str(e)) from None
  check_reader(read, path, _finite_arrays)


# --- motion formats ----------------------------------------------------------------------

def _mocap_ok(out):
  frames, _ = out
  assert frames.ndim == 2 and frames.shape[1] == 44 and np.all(np.isfinite(frames))
  assert np.all(frames[:, 0] >= 0) and frames[:-1, 0].sum() <= dm.MAX_CLIP_SECONDS


NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**12),
                   st.just(0.0), st.text(max_size=3), st.none())


@FUZZ
@given(st.data())
def test_mocap_reader_survives_damaged_clips(tmp_path_factory, data):
  path = tmp_path_factory.mktemp('mocap') / 'clip.txt'
  with open(dm.clip_files()['run'], encoding='utf-8') as fh:
    clip = json.load(fh)
  clip['Frames'] = clip['Frames'][:4]
  for _ in range(data.draw(st.integers(1, 4))):
    row = data.draw(st.integers(0, 3))
    col = data.draw(st.integers(0, 44))
    value = data.draw(NUMBER)
    if col < 44:
      clip['Frames'][row][col] = value
    else:
      clip['Frames'][row].append(value)
  text = json.dumps(clip).encode()
  if data.draw(st.booleans()):
    text = data.draw(damaged(text))
  path.write_bytes(text)
  check_reader(lambda p: dm.read_mocap(str(p)), path, _mocap_ok)


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(),
                              st.text(max_size=5)),
                    lambda kids: st.one_of(st.lists(kids, max_size=3),
                                           st.dictionaries(st.sampled_from(
                                               ['labels', 'start_t', 'end_t', 'proc_label',
                                                'frame_ann', 'x']), kids, max_size=4)),
                    max_leaves=12)


@FUZZ
@given(st.data())
def test_babel_annotations_survive_random_json(tmp_path_factory, data):
  root = tmp_path_factory.mktemp('babel')
  label = data.draw(st.fixed_dictionaries(
      {'proc_label': st.one_of(st.text(max_size=4), JSON),
       'start_t': st.one_of(NUMBER, JSON), 'end_t': st.one_of(NUMBER, JSON)}))
  ann = {'s1': {'frame_ann': data.draw(st.one_of(st.just({'labels': [label]}), JSON))}}
  (root / 'train.json').write_text(json.dumps(ann))

  def ok(out):
    for lab in out['s1']['frame_ann']['labels'] if out['s1'].get('frame_ann') else []:
      assert 0 <= lab['start_t'] <= lab['end_t'] < float('inf')
      babel.frame_segments(out['s1'], 30.0, 100)    # usable downstream
  check_reader(lambda r: babel.read_annotations(str(r), 'train'), root, ok)


@FUZZ
@given(st.text(alphabet='ab #0123456789.-eEinfa/\t', max_size=40))
def test_humanml3d_text_lines_survive_random_text(tmp_path_factory, line):
  root = tmp_path_factory.mktemp('hml')
  (root / 'texts').mkdir()
  (root / 'texts' / 'm.txt').write_text(line.replace('\n', ' ') + '\n')

  def ok(out):
    for t in out:
      assert 0 <= t.start <= t.end < float('inf')
  check_reader(lambda r: humanml3d.read_texts(str(r), 'm'), root, ok)


# --- word-vector pickles and MVTec tiffs -----------------------------------------------------

PLAIN = st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=4), st.floats(),
                               st.booleans()),
                     lambda kids: st.one_of(st.lists(kids, max_size=3),
                                            st.dictionaries(st.text(max_size=3), kids,
                                                            max_size=3)), max_leaves=8)


@FUZZ
@given(st.data())
def test_index_pickle_reader_survives_damaged_pickles(tmp_path_factory, data):
  path = tmp_path_factory.mktemp('pkl') / 'idx.pkl'
  obj = data.draw(st.one_of(PLAIN, st.just({'walk': 0, 'run': 1})))
  raw = pickle.dumps(obj, protocol=data.draw(st.integers(0, 5)))
  path.write_bytes(data.draw(st.one_of(st.just(raw), damaged(raw))))

  def ok(out):
    assert isinstance(out, dict)
    assert all(isinstance(k, str) and type(i) is int and 0 <= i < 2 for k, i in out.items())
  check_reader(lambda p: wv.read_index_pickle(str(p), num_rows=2), path, ok)


@FUZZ
@given(st.data())
def test_mvtec_tiff_reader_survives_damaged_files(tmp_path_factory, data):
  tifffile = pytest.importorskip('tifffile')
  path = tmp_path_factory.mktemp('tiff') / 'x.tiff'
  tifffile.imwrite(path, np.ones((4, 5, 3), np.float32), photometric='rgb')
  path.write_bytes(data.draw(damaged(path.read_bytes())))

  def ok(out):
    assert out.dtype == np.float32 and out.ndim == 3 and out.shape[2] == 3
    assert np.all(np.isfinite(out))
  check_reader(mvtec3d.read_xyz, path, ok)
