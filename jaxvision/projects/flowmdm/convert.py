"""Load FlowMDM's released PyTorch weights (upstream `state_dict`) into the Flax denoiser.

The released checkpoints are torch `.pt` state dicts: read them directly (needs torch)
or turn them once into an `.npz` of the same names with
`python -m jaxvision.nn.convert_torch_state_dict model001300000.pt flowmdm_babel.npz`,
then train or sample with `--config.init.torch_state_dict=flowmdm_babel.npz`.

Upstream names (torch Linear weights are (out, in); Flax kernels are (in, out)):

  input_process.poseEmbedding.{weight,bias}                -> input_process
  embed_timestep.time_embed.{0,2}.{weight,bias}            -> time_embed_{0,1}
  embed_text.{weight,bias}                                 -> embed_text
  seqTransEncoder.project_in.{weight,bias}                 -> project_in
  seqTransEncoder.pos_emb.absolute.scale (1,)              -> ape_scale
  seqTransEncoder.attn_layers.layers.{2i}.0.0.{weight,bias}   -> layer_i_attn_norm
  seqTransEncoder.attn_layers.layers.{2i}.1.custom_query_fn.{weight,bias}
                                                           -> layer_i_attn/query_input
  seqTransEncoder.attn_layers.layers.{2i}.1.to_{q,k,v,out}.weight -> layer_i_attn/to_*
      (to_q/k/v kernels (d, heads, head_dim), to_out (heads, head_dim, d): x-transformers
      splits its inner dim head-major, '(h d)')
  seqTransEncoder.attn_layers.layers.{2i+1}.0.0.{weight,bias} -> layer_i_ff_norm
  seqTransEncoder.attn_layers.layers.{2i+1}.1.ff.0.0.{weight,bias} -> layer_i_ff/wi
  seqTransEncoder.attn_layers.layers.{2i+1}.1.ff.3.{weight,bias}   -> layer_i_ff/wo
  seqTransEncoder.attn_layers.final_norm.{weight,bias}     -> final_norm
  seqTransEncoder.project_out.{weight,bias}                -> project_out
  output_process.poseFinal.{weight,bias}                   -> output_process

Buffers (`embed_timestep.sequence_pos_encoder.pe`, `sequence_pos_encoder.pe`,
`...rotary_pos_emb.relative.inv_freq`) are recomputed by the model and, when present,
checked against it (the timestep table on the rows the diffusion steps index, at a
float32-rounding tolerance: torch writes it in float32); `clip_model.*` and `rot2xyz.*` are ignored.  The per-layer
`custom_query_fn` is PCCAT's Linear(2d -> d) (upstream's `process_cond_input`).
"""

from __future__ import annotations

import re

import flax.linen as nn
import jax
import numpy as np

from jaxvision.nn import positional
from jaxvision.nn.convert_torch_state_dict import read_state_dict  # pylint: disable=unused-import

PREFIX = 'seqTransEncoder.attn_layers.layers.'
IGNORED = re.compile(r'^(clip_model\.|rot2xyz\.|.*\.last_timestep$|t_pos_encoder\.)')


def _linear(state, key, bias=True):
  if key + '.weight' not in state:
    raise KeyError(f'upstream state dict lacks {key}.weight')
  out = {'kernel': np.asarray(state[key + '.weight'], np.float32).T}
  if bias:
    out['bias'] = np.asarray(state[key + '.bias'], np.float32)
  return out


def _norm(state, key):
  return {'scale': np.asarray(state[key + '.weight'], np.float32),
          'bias': np.asarray(state[key + '.bias'], np.float32)}


def num_layers_of(state) -> int:
  idx = {int(m.group(1)) for k in state for m in [re.match(re.escape(PREFIX) + r'(\d+)\.', k)] if m}
  if not idx or len(idx) % 2:
    raise ValueError('upstream state dict has no (or an odd number of) attention/ff sub-layers')
  return len(idx) // 2


def config_from_state_dict(state) -> dict:
  """Model sizes read off the weights (num_heads cannot be: upstream uses 4)."""
  d, f = np.shape(state['input_process.poseEmbedding.weight'])
  inner = np.shape(state[PREFIX + '0.1.to_q.weight'])[0]
  return {'input_dim': int(f), 'latent_dim': int(d), 'num_layers': num_layers_of(state),
          'ff_size': int(np.shape(state[PREFIX + '1.1.ff.0.0.weight'])[0]),
          'text_dim': int(np.shape(state['embed_text.weight'])[1]), 'inner_dim': int(inner)}


def _heads(linear, num_heads, axis):
  """Splits a (d, inner) kernel's inner dim (axis 1) or an (inner, d) one's (axis 0)
  into (num_heads, head_dim), x-transformers' head-major '(h d)' layout."""
  k = linear['kernel']
  inner = k.shape[axis]
  if inner % num_heads:
    raise ValueError(f'attention width {inner} is not divisible by num_heads={num_heads}')
  shape = ((k.shape[0], num_heads, inner // num_heads) if axis == 1
           else (num_heads, inner // num_heads, k.shape[1]))
  return {'kernel': k.reshape(shape)}


def denoiser_params(state, num_heads: int = 4) -> dict:
  """The denoiser's parameter tree from an upstream FlowMDM state dict (upstream: 4 heads)."""
  p = {'input_process': _linear(state, 'input_process.poseEmbedding'),
       'time_embed_0': _linear(state, 'embed_timestep.time_embed.0'),
       'time_embed_1': _linear(state, 'embed_timestep.time_embed.2'),
       'embed_text': _linear(state, 'embed_text'),
       'project_in': _linear(state, 'seqTransEncoder.project_in'),
       'ape_scale': np.asarray(state['seqTransEncoder.pos_emb.absolute.scale'],
                               np.float32).reshape(1),
       'final_norm': _norm(state, 'seqTransEncoder.attn_layers.final_norm'),
       'project_out': _linear(state, 'seqTransEncoder.project_out'),
       'output_process': _linear(state, 'output_process.poseFinal')}
  for i in range(num_layers_of(state)):
    a, f = f'{PREFIX}{2 * i}.', f'{PREFIX}{2 * i + 1}.'
    p[f'layer_{i}_attn_norm'] = _norm(state, a + '0.0')
    p[f'layer_{i}_attn'] = {'query_input': _linear(state, a + '1.custom_query_fn'),
                            **{n: _heads(_linear(state, a + f'1.{n}', bias=False), num_heads,
                                         0 if n == 'to_out' else 1)
                               for n in ('to_q', 'to_k', 'to_v', 'to_out')}}
    p[f'layer_{i}_ff_norm'] = _norm(state, f + '0.0')
    p[f'layer_{i}_ff'] = {'wi': _linear(state, f + '1.ff.0.0'), 'wo': _linear(state, f + '1.ff.3')}
  return p


def float32_table_tolerance(rows: int) -> np.ndarray:
  """Per-row bound (rows,) on |torch's float32 sinusoid table - the exact one|.

  Torch builds MDM's table in float32: a = fl(i * fl(-ln 1e4 / d)), div = exp(a),
  angle = fl(p * div), then sin/cos.  The roundings of a (at most |a| e^a eps/2 <= eps/5
  relative on the angle, twice), exp's last-place error (~eps) and the product's rounding
  (eps/2) add up to about 2 p eps on the angle of row p, which sin/cos pass on unchanged.
  Twice that bound leaves room for other float32 exp/sin implementations (GPU, Sleef).
  """
  eps = float(np.finfo(np.float32).eps)
  return 4 * eps * (np.arange(rows) + 1.0)


def check_buffers(state, latent_dim: int, rows_used: int | None = None) -> None:
  """Upstream's stored tables must be the ones the model recomputes, on the rows it uses.

  The model indexes the timestep table with the diffusion step, so only its first
  `rows_used` rows (the number of diffusion steps; None: all) matter.  A genuine torch
  table differs from the exact sinusoid by float32 rounding that grows with the row
  (~1e-4 at row 1,000, ~2e-4 past 2,700 at d=512), so each row is compared at the
  float32 bound of `float32_table_tolerance`, not at one fixed atol.
  """
  for key in ('embed_timestep.sequence_pos_encoder.pe', 'sequence_pos_encoder.pe'):
    if key in state:
      pe = np.asarray(state[key], np.float64).reshape(-1, latent_dim)
      n = len(pe) if rows_used is None else int(rows_used)
      if n > len(pe):
        raise ValueError(f'{key} has {len(pe)} rows but the model uses {n} (diffusion steps)')
      ours = positional.sinusoid_interleaved(n, latent_dim).astype(np.float64)
      err = np.abs(pe[:n] - ours).max(axis=1)
      bad = np.flatnonzero(err > float32_table_tolerance(n))
      if bad.size:
        r = int(bad[0])
        raise ValueError(f'{key} differs from the sinusoid table the model uses: row {r} is off '
                         f'by {err[r]:.3g} (float32 rounding allows '
                         f'{float32_table_tolerance(n)[r]:.3g})')
  key = 'seqTransEncoder.attn_layers.rotary_pos_emb.relative.inv_freq'
  if key in state:
    inv = np.asarray(state[key])
    r = 2 * len(inv)
    if not np.allclose(inv, 1.0 / 10000 ** (np.arange(0, r, 2) / r), rtol=1e-5):
      raise ValueError(f'{key} is not RoPE\'s 1/10000^(2i/{r})')


def load_into(params, state, model_cfg, rows_used: int | None = None) -> dict:
  """`params` (the FlowMDM model's tree) with its denoiser replaced by upstream's weights.

  `rows_used`: how many rows of the stored timestep table the model reads (the number of
  diffusion steps, `config.diffusion.steps`); None checks the whole stored table.
  """
  unknown = sorted(k for k in state if not IGNORED.match(k) and not k.startswith(
      ('input_process.', 'embed_timestep.', 'embed_text.', 'seqTransEncoder.', 'output_process.',
       'sequence_pos_encoder.')))
  if unknown:
    raise ValueError(f'upstream state dict has keys this converter does not know: {unknown[:5]}')
  cfg = config_from_state_dict(state)
  for k in ('input_dim', 'latent_dim', 'num_layers', 'ff_size', 'text_dim'):
    if cfg[k] != model_cfg[k]:
      raise ValueError(f'checkpoint has {k}={cfg[k]} but config.model.{k}={model_cfg[k]}')
  if cfg['inner_dim'] != model_cfg['num_heads'] * model_cfg['head_dim']:
    raise ValueError(f"checkpoint attention width {cfg['inner_dim']} != num_heads x head_dim")
  check_buffers(state, cfg['latent_dim'], rows_used)
  new = denoiser_params(state, model_cfg['num_heads'])
  old = jax.tree.map(np.shape, nn.meta.unbox(params['denoiser']))
  got = jax.tree.map(np.shape, new)
  if old != got:
    raise ValueError('converted parameters do not match the model: '
                     f'{jax.tree_util.tree_structure(old)} vs {jax.tree_util.tree_structure(got)}')
  return dict(params, denoiser=new)
