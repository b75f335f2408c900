"""Load OpenAI CLIP's PyTorch text-tower weights into `clip_text.CLIPTextEncoder`.

OpenAI's `clip/model.py` (class CLIP, `encode_text`) names the text tower's
parameters, in a state_dict of the full model (TorchScript `.pt` files; convert one with
`python -m jaxvision.nn.convert_torch_state_dict ViT-B-32.pt clip.npz`):

    token_embedding.weight                         (vocab, width)
    positional_embedding                           (context, width)
    transformer.resblocks.{i}.ln_1.{weight,bias}   (width,)
    transformer.resblocks.{i}.attn.in_proj_weight  (3 width, width): rows q; k; v
    transformer.resblocks.{i}.attn.in_proj_bias    (3 width,)
    transformer.resblocks.{i}.attn.out_proj.{weight (width, width), bias}
    transformer.resblocks.{i}.ln_2.{weight,bias}
    transformer.resblocks.{i}.mlp.c_fc.{weight (4 width, width), bias}
    transformer.resblocks.{i}.mlp.c_proj.{weight (width, 4 width), bias}
    ln_final.{weight,bias}
    text_projection                                (width, embed_dim), used as x @ P

torch.nn.Linear computes x W^T + b, so Dense kernels are W^T; nn.MultiheadAttention
splits the q/k/v rows head-major (head h owns rows h*hd..(h+1)*hd), which is the
(width, heads, head_dim) kernel layout after the transpose. Visual-tower keys,
`logit_scale` and the int entries (`input_resolution`, ...) are ignored. Sizes are read
from the shapes as OpenAI's `build_model` does; it sets heads = width // 64, which is
wrong for non-OpenAI widths, so `num_heads` can be given.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.nn import clip_text
from jaxvision.nn import param_tree
from jaxvision.nn.convert_torch_state_dict import read_state_dict

Source = Union[str, os.PathLike, Mapping[str, Any]]
_BLOCK = re.compile(r'transformer\.resblocks\.(\d+)\.')


def _get(sd: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
  if key not in sd:
    raise KeyError(f'CLIP state_dict has no {key!r}')
  value = np.asarray(sd[key], dtype=np.float32)
  if value.shape != shape:
    raise ValueError(f'CLIP state_dict {key!r} has shape {value.shape}, expected {shape}')
  return value


def clip_text_config(state_dict: Mapping[str, Any], num_heads: Optional[int] = None,
                     prefix: str = '') -> dict[str, int]:
  """`CLIPTextEncoder` sizes read from the state_dict's shapes (as `build_model`)."""
  sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
  for key in ('token_embedding.weight', 'positional_embedding', 'ln_final.weight',
              'text_projection'):
    if key not in sd:
      raise KeyError(f'CLIP state_dict has no {prefix + key!r}; is this a CLIP checkpoint?')
  width = int(np.shape(sd['ln_final.weight'])[0])
  layers = sorted({int(m.group(1)) for k in sd if (m := _BLOCK.match(k))})
  if layers != list(range(len(layers))):
    raise ValueError(f'CLIP resblocks are not numbered 0..n-1: {layers}')
  heads = num_heads or width // 64
  if width % heads:
    raise ValueError(f'width {width} is not divisible by num_heads {heads}')
  return {'vocab_size': int(np.shape(sd['token_embedding.weight'])[0]),
          'context_length': int(np.shape(sd['positional_embedding'])[0]),
          'width': width, 'depth': len(layers), 'num_heads': heads,
          'embed_dim': int(np.shape(sd['text_projection'])[1])}


def clip_text_params(state_dict: Mapping[str, Any], config: Mapping[str, int],
                     prefix: str = '') -> dict[str, Any]:
  """The `CLIPTextEncoder` parameter tree (numpy float32) for a config's sizes."""
  sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
  w, h = config['width'], config['num_heads']
  hd = w // h

  def ln(name):
    return {'scale': _get(sd, f'{name}.weight', (w,)), 'bias': _get(sd, f'{name}.bias', (w,))}

  params: dict[str, Any] = {
      'token_embedding': _get(sd, 'token_embedding.weight', (config['vocab_size'], w)),
      'positional_embedding': _get(sd, 'positional_embedding', (config['context_length'], w)),
      'ln_final': ln('ln_final'),
      'text_projection': _get(sd, 'text_projection', (w, config['embed_dim'])),
  }
  for i in range(config['depth']):
    pre = f'transformer.resblocks.{i}'
    in_w = _get(sd, f'{pre}.attn.in_proj_weight', (3 * w, w))
    in_b = _get(sd, f'{pre}.attn.in_proj_bias', (3 * w,))
    attn = {name: {'kernel': in_w[j * w:(j + 1) * w].T.reshape(w, h, hd),
                   'bias': in_b[j * w:(j + 1) * w].reshape(h, hd)}
            for j, name in enumerate(('query', 'key', 'value'))}
    attn['out'] = {'kernel': _get(sd, f'{pre}.attn.out_proj.weight', (w, w)).T.reshape(h, hd, w),
                   'bias': _get(sd, f'{pre}.attn.out_proj.bias', (w,))}
    mlp = {'c_fc': {'kernel': _get(sd, f'{pre}.mlp.c_fc.weight', (4 * w, w)).T,
                    'bias': _get(sd, f'{pre}.mlp.c_fc.bias', (4 * w,))},
           'c_proj': {'kernel': _get(sd, f'{pre}.mlp.c_proj.weight', (w, 4 * w)).T,
                      'bias': _get(sd, f'{pre}.mlp.c_proj.bias', (w,))}}
    params[f'resblocks_{i}'] = {'ln_1': ln(f'{pre}.ln_1'), 'attn': attn,
                                'ln_2': ln(f'{pre}.ln_2'), 'mlp': mlp}
  return params


def check_params(model: nn.Module, params: Mapping[str, Any], length: int = 8) -> None:
  """Raises ValueError naming every key/shape where params differ from model.init's."""
  abstract = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, length), jnp.int32)))['params']
  param_tree.check_shapes(abstract, params, 'CLIP text')


def load_clip_text(source: Source, *, num_heads: Optional[int] = None, prefix: str = '',
                   dtype_mm: Any = 'float32') -> tuple[clip_text.CLIPTextEncoder, dict[str, Any]]:
  """(model, params) from an OpenAI CLIP state_dict (flat dict of arrays, or its .npz).

  `prefix` selects a sub-tree (e.g. 'clip_model.' in a checkpoint that embeds CLIP).
  """
  sd = read_state_dict(source)
  config = clip_text_config(sd, num_heads, prefix)
  model = clip_text.CLIPTextEncoder(**config, dtype_mm=dtype_mm)
  params = clip_text_params(sd, config, prefix)
  check_params(model, params, length=min(8, config['context_length']))
  return model, params
