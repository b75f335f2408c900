"""PyTorch checkpoints as flat dicts of numpy arrays (`.npz`), and reading them back.

Public PyTorch weights (OpenAI CLIP's TorchScript `.pt` files, Guo et al.'s evaluator
`finest.tar`, MDM/FlowMDM `model*.pt`) hold (possibly nested) dicts of tensors. The
jaxvision loaders take a flat `{name: np.ndarray}` dict with the upstream names, nested
dicts joined by '.' (e.g. finest.tar's `text_encoder` state_dict becomes
`text_encoder.gru.weight_ih_l0`, ...). torch is optional: only this conversion needs it.

    python -m jaxvision.nn.convert_torch_state_dict ViT-B-32.pt clip_b32.npz
    python -m jaxvision.nn.convert_torch_state_dict finest.tar t2m_evaluator.npz

TorchScript archives are opened with `torch.jit.load(...).state_dict()` (as
`clip.load` does), other files with `torch.load(weights_only=True)`, or with
`--unsafe` `weights_only=False` (only for files you trust). Entries that are not
tensors (epoch counters, ...) are skipped, and so are keys matching `--exclude`
(default '^opt_': the optimizer states in finest.tar). bfloat16 tensors are stored as
float32; other dtypes (e.g. CLIP's float16) are kept and cast by the loaders.

`read_state_dict` refuses (`DataFileError` naming the file, or 'state_dict' for an
in-memory mapping, and the key) empty / truncated / pickled `.npz` files, complex,
string or object arrays and NaN/Inf weights, which a cast would otherwise let through.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Mapping, Union

import numpy as np

from jaxvision.data.errors import check_array
from jaxvision.data.errors import read_npz


def flatten_state(obj: Any, prefix: str = '') -> dict[str, Any]:
  """Nested dicts of tensors/arrays -> {'a.b.c': leaf}; non-array leaves are dropped."""
  flat: dict[str, Any] = {}
  if isinstance(obj, Mapping):
    for key, value in obj.items():
      flat.update(flatten_state(value, f'{prefix}{key}.'))
  elif hasattr(obj, 'shape') and hasattr(obj, 'dtype'):
    flat[prefix[:-1]] = obj
  return flat


def _to_numpy(tensor: Any) -> np.ndarray:
  if hasattr(tensor, 'detach'):  # A torch tensor.
    import torch  # pylint: disable=g-import-not-at-top
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
      tensor = tensor.float()
    return tensor.numpy()
  return np.asarray(tensor)


def torch_file_to_arrays(path: Union[str, os.PathLike], *, exclude: str = '^opt_',
                         unsafe: bool = False) -> dict[str, np.ndarray]:
  """Reads a PyTorch checkpoint (TorchScript or pickled dict) as flat numpy arrays."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('converting a PyTorch file needs torch (pip install torch)') from e
  if not os.path.exists(path):
    raise FileNotFoundError(f'PyTorch checkpoint not found: {path}')
  try:
    state = torch.jit.load(str(path), map_location='cpu').state_dict()
  except (RuntimeError, ValueError):
    state = torch.load(str(path), map_location='cpu', weights_only=not unsafe)
  if hasattr(state, 'state_dict') and not isinstance(state, Mapping):
    state = state.state_dict()
  pattern = re.compile(exclude) if exclude else None
  return {k: _to_numpy(v) for k, v in flatten_state(state).items()
          if not (pattern and pattern.search(k))}


def read_state_dict(source: Union[str, os.PathLike, Mapping[str, Any]]) -> dict[str, np.ndarray]:
  """A flat {name: array} dict from a mapping (nested ones are flattened) or an `.npz`."""
  if isinstance(source, Mapping):
    return {k: check_array(_to_numpy(v), 'state_dict', repr(k))
            for k, v in flatten_state(source).items()}
  if not os.path.exists(source):
    raise FileNotFoundError(f'state dict file not found: {source}')
  return read_npz(source)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('src', help='PyTorch checkpoint (.pt, .pth, .tar)')
  parser.add_argument('dst', help='output .npz')
  parser.add_argument('--exclude', default='^opt_', help='regex of keys to skip')
  parser.add_argument('--unsafe', action='store_true',
                      help='torch.load(weights_only=False): runs pickled code; trusted files only')
  args = parser.parse_args(argv)
  arrays = torch_file_to_arrays(args.src, exclude=args.exclude, unsafe=args.unsafe)
  if not arrays:
    raise SystemExit(f'{args.src} holds no tensors')
  with open(args.dst, 'wb') as f:  # np.savez would append '.npz' to other names.
    np.savez(f, **arrays)
  print(f'wrote {len(arrays)} arrays to {args.dst}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
