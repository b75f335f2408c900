"""Read and write big_vision ViT checkpoints (`.npz`) for `jaxvision.nn.vit.ViT`.

big_vision (google-research/big_vision, `big_vision/models/vit.py`, `load`) stores a
ViT's parameters as one `.npz` whose keys are the parameter paths joined by '/', e.g.
'Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel'. This module reads such files
into the parameter tree of `jaxvision.nn.vit.ViT` (which has the same names), handling
the layouts that public checkpoints come in:

* keys prefixed with 'params/';
* the scanned layout ('Transformer/encoderblock/...' with a leading depth axis), split
  into per-layer 'encoderblock_{i}' (or stacked, if the target tree is scanned);
* pre-linen module numbering of the original ViT release ("An Image is Worth 16x16
  Words", github.com/google-research/vision_transformer), e.g. 'LayerNorm_2' or
  'MlpBlock_3', renumbered per module type as flax's `convert_pre_linen` does;
* position embeddings stored under 'Transformer/posembed_input/' or 'Transformer/',
  and the old combined [cls]+grid position embedding (the cls entry is folded into
  the 'cls' token, as big_vision does);
* a learned position embedding for a different grid size, resampled bilinearly
  ("high-res fine-tuning", ViT paper Sec. 3.2).

Files are read with `jaxvision.data.errors.read_npz`: an empty, truncated or pickled
`.npz`, complex / string / object arrays and NaN/Inf weights are refused with a
`DataFileError` naming the file and the key (a cast to the model's dtype would
silently drop an imaginary part); `merge_params` checks in-memory params the same way.
"""

from __future__ import annotations

import collections
import math
import os
import re
from typing import Any, BinaryIO, Iterable, Mapping, Union

import numpy as np
import scipy.ndimage

from jaxvision.data.errors import check_array
from jaxvision.data.errors import read_npz
from jaxvision.nn import param_tree

PathOrFile = Union[str, os.PathLike, BinaryIO]
_SCANNED = 'Transformer/encoderblock/'


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """Nested dict -> {'a/b/c': leaf}."""
  flat = {}
  for key, value in tree.items():
    path = f'{prefix}{key}'
    if isinstance(value, Mapping):
      flat.update(flatten(value, path + '/'))
    else:
      flat[path] = value
  return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
  """{'a/b/c': leaf} -> nested dict."""
  tree: dict[str, Any] = {}
  for path, value in flat.items():
    *parents, leaf = path.split('/')
    node = tree
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def _renumber_modules(tree: Any) -> Any:
  """Renumbers 'Name_<k>' siblings per Name to 0, 1, ... in numeric order.

  Pre-linen flax numbered submodules with one counter across all types (LayerNorm_0,
  MultiHeadDotProductAttention_1, LayerNorm_2, MlpBlock_3); linen counts per type.
  Names that are already contiguous per type are left unchanged.
  """
  if not isinstance(tree, Mapping):
    return tree
  numbered = collections.defaultdict(list)
  for key in tree:
    m = re.fullmatch(r'(.*)_(\d+)', key)
    if m:
      numbered[m.group(1)].append((int(m.group(2)), key))
  rename = {}
  for base, items in numbered.items():
    for new_index, (_, key) in enumerate(sorted(items)):
      rename[key] = f'{base}_{new_index}'
  return {rename.get(k, k): _renumber_modules(v) for k, v in tree.items()}


_MAP_HEAD = 'MAPHead_0/'
_MAP_HEAD_PARTS = ('probe', 'MultiHeadDotProductAttention_0', 'MlpBlock_0', 'LayerNorm_0')


def _fix_old_layouts(flat: dict[str, np.ndarray],
                     target: Mapping[str, Any]) -> dict[str, np.ndarray]:
  flat = {(k[len('params/'):] if k.startswith('params/') else k): v for k, v in flat.items()}
  flat = flatten(_renumber_modules(unflatten(flat)))
  for old in ('Transformer/posembed_input/pos_embedding', 'Transformer/pos_embedding'):
    if old in flat:
      flat['pos_embedding'] = flat.pop(old)
  # A standalone MAP head (big_vision MAPHead params, e.g. some MAP-head checkpoints)
  # has the head's parameters at the top level; a model with a MAP head (ViT with
  # pool_type 'map', FroFA's MAPClassifier) has them under 'MAPHead_0/'.  Move them to
  # where the target model has them, in either direction.
  if 'probe' in flat and _MAP_HEAD + 'probe' in target:
    for k in [k for k in flat if k.split('/')[0] in _MAP_HEAD_PARTS]:
      flat[_MAP_HEAD + k] = flat.pop(k)
  elif _MAP_HEAD + 'probe' in flat and 'probe' in target:
    for k in [k for k in flat if k.startswith(_MAP_HEAD)]:
      flat[k[len(_MAP_HEAD):]] = flat.pop(k)
  return flat


def scan_to_pyloop(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """'Transformer/encoderblock/X' (depth, ...) -> 'Transformer/encoderblock_{i}/X'."""
  out = {k: v for k, v in flat.items() if not k.startswith(_SCANNED)}
  depths = {k: np.shape(v)[0] for k, v in flat.items() if k.startswith(_SCANNED)}
  if len(set(depths.values())) > 1:
    raise ValueError(f'scanned encoder blocks disagree on depth: {depths}')
  for key, depth in depths.items():
    rest = key[len(_SCANNED):]
    for i in range(depth):
      out[f'Transformer/encoderblock_{i}/{rest}'] = flat[key][i]
  return out


def pyloop_to_scan(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """'Transformer/encoderblock_{i}/X' -> 'Transformer/encoderblock/X' stacked on axis 0."""
  pattern = re.compile(r'Transformer/encoderblock_(\d+)/(.*)')
  out, blocks = {}, collections.defaultdict(dict)
  for key, value in flat.items():
    m = pattern.fullmatch(key)
    if m:
      blocks[m.group(2)][int(m.group(1))] = value
    else:
      out[key] = value
  for rest, per_layer in blocks.items():
    if sorted(per_layer) != list(range(len(per_layer))):
      raise ValueError(f'encoder blocks of {rest!r} are not numbered 0..n-1: {sorted(per_layer)}')
    out[_SCANNED + rest] = np.stack([per_layer[i] for i in range(len(per_layer))])
  return out


def _grid_and_extra(num_tokens: int) -> tuple[int, int]:
  """Square grid side and number of leading extra (e.g. cls) tokens in a posemb."""
  side = math.isqrt(num_tokens)
  return side, num_tokens - side * side


def resample_posemb(old: np.ndarray, new_num_tokens: int) -> np.ndarray:
  """Bilinearly resizes a (1, [extra +] g*g, d) position embedding to new_num_tokens.

  The grid is zoomed with `scipy.ndimage.zoom(order=1)` as in big_vision; leading extra
  tokens (a class token's embedding) are kept as they are when the target has as many.
  """
  old = np.asarray(old)
  if old.shape[1] == new_num_tokens:
    return old
  gs_old, extra_old = _grid_and_extra(old.shape[1])
  gs_new, extra_new = _grid_and_extra(new_num_tokens)
  if extra_old != extra_new:
    raise ValueError(f'cannot resample a position embedding with {old.shape[1]} tokens '
                     f'({extra_old} extra) to {new_num_tokens} tokens ({extra_new} extra)')
  extra, grid = old[:, :extra_old], old[0, extra_old:].reshape(gs_old, gs_old, -1)
  zoom = (gs_new / gs_old, gs_new / gs_old, 1)
  grid = scipy.ndimage.zoom(grid, zoom, order=1).reshape(1, gs_new * gs_new, -1)
  return np.concatenate([extra, grid.astype(old.dtype)], axis=1)


def _read_npz(path: PathOrFile) -> dict[str, np.ndarray]:
  if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
    raise FileNotFoundError(f'ViT checkpoint not found: {path}')
  return read_npz(path)


def load_big_vision_npz(path: PathOrFile, init_params: Mapping[str, Any], *,
                        dont_load: Iterable[str] = ()) -> dict[str, Any]:
  """Loads a big_vision ViT `.npz` into a parameter tree shaped like `init_params`.

  Args:
    path: the `.npz` file (path or binary file object).
    init_params: the model's parameters (the content of `variables['params']`), plain
      or boxed; leaves only need `.shape`/`.dtype` (e.g. from `jax.eval_shape`)
      except those kept through `dont_load`.
    dont_load: regexes (full match on '/'-joined keys, e.g. 'head/.*'); matching
      parameters keep their `init_params` value, and matching checkpoint entries that
      the model lacks are ignored.

  Returns:
    Nested dict with `init_params`' structure, cast to the init dtypes: numpy arrays,
    or, where a target leaf carries a sharding (a placed `jax.Array`, or a
    `jax.ShapeDtypeStruct(..., sharding=...)` from `jax.eval_shape` under the run's
    mesh), `jax.Array`s with that sharding, placed leaf by leaf
    (`param_tree.place`: each device's shard is cut from the host array; the sharded
    tree is never gathered on one host).

  Raises:
    ValueError: naming every key missing from the checkpoint, every unexpected
      checkpoint key, or a key whose shape differs from the model's.
  """
  source = str(path) if isinstance(path, (str, os.PathLike)) else getattr(path, 'name', 'npz')
  return merge_params(_read_npz(path), init_params, dont_load=dont_load, source=source)


def merge_params(loaded: Mapping[str, Any], init_params: Mapping[str, Any], *,
                 dont_load: Iterable[str] = (), source: str = 'checkpoint') -> dict[str, Any]:
  """Fits loaded ViT params (flat '/'-keys or nested) to `init_params`' structure.

  The same checks and layout conversions as `load_big_vision_npz`, for params that
  come from elsewhere (e.g. a jaxvision run's checkpoint: `checkpoint.load_params`).
  """
  loaded = flatten(loaded) if any(isinstance(v, Mapping) for v in loaded.values()) else dict(loaded)
  init_flat = flatten(param_tree.unbox(init_params))
  ckpt = _fix_old_layouts({k: check_array(v, source, repr(k)) for k, v in loaded.items()},
                          init_flat)
  del loaded   # ckpt holds the only host references: each is dropped once placed
  if any(k.startswith(_SCANNED) for k in init_flat):
    ckpt = pyloop_to_scan(scan_to_pyloop(ckpt))
  else:
    ckpt = scan_to_pyloop(ckpt)

  patterns = [re.compile(p) for p in dont_load]
  def keep_init(key):
    return any(p.fullmatch(key) for p in patterns)

  # Old checkpoints added the posemb before prepending [cls]: fold its cls entry into
  # the cls token when the model's posemb is a plain grid.
  for key in [k for k in init_flat if k.split('/')[-1] == 'pos_embedding']:
    if key in ckpt and not keep_init(key):
      _, extra_new = _grid_and_extra(init_flat[key].shape[1])
      _, extra_old = _grid_and_extra(ckpt[key].shape[1])
      if extra_old == 1 and extra_new == 0:
        pe = ckpt[key]
        cls_key = key[:-len('pos_embedding')] + 'cls'
        if cls_key in ckpt:
          ckpt[cls_key] = ckpt[cls_key] + pe[:, :1]
        ckpt[key] = pe[:, 1:]

  missing = sorted(k for k in init_flat if k not in ckpt and not keep_init(k))
  unexpected = sorted(k for k in ckpt if k not in init_flat and not keep_init(k))
  if missing or unexpected:
    raise ValueError(f'{source} does not match the model: '
                     f'missing keys {missing}, unexpected keys {unexpected}')

  params, mismatched = {}, []
  for key, init in init_flat.items():
    if keep_init(key):
      if not hasattr(init, '__array__'):
        raise ValueError(f'{key} matches dont_load but its init value is abstract ({init})')
      params[key] = init
      continue
    value = ckpt[key]
    if key.split('/')[-1] == 'pos_embedding' and value.shape != tuple(init.shape):
      value = resample_posemb(value, init.shape[1])
    if value.shape != tuple(init.shape):
      mismatched.append(f'{key}: checkpoint {value.shape}, model {tuple(init.shape)}')
      continue
    # A sharded target gets its leaf placed now, one leaf at a time (each device's
    # shard sliced from the host array), never the whole tree on one host.
    params[key] = param_tree.place(np.asarray(value, dtype=init.dtype), init)
    del value
    ckpt.pop(key)
  if mismatched:
    raise ValueError(f'shape mismatch for {"; ".join(mismatched)}')
  return unflatten(params)


def save_big_vision_npz(path: PathOrFile, params: Mapping[str, Any]) -> None:
  """Writes params (plain or boxed) as a big_vision `.npz` with '/'-joined keys."""
  flat = {k: np.asarray(v) for k, v in flatten(param_tree.unbox(params)).items()}
  if isinstance(path, (str, os.PathLike)):
    with open(path, 'wb') as f:  # np.savez would append '.npz' to other names.
      np.savez(f, **flat)
  else:
    np.savez(path, **flat)
