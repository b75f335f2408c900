"""Upstream FlowMDM state_dict -> Flax: the converted model reproduces an independent numpy
forward of upstream's architecture (model/FlowMDM.py + its x-transformers) to ~1e-5."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from jaxvision.nn import positional
from jaxvision.projects.flowmdm import convert
from jaxvision.projects.flowmdm import model as model_lib

HEADS, DIM_HEAD = 4, 64       # upstream: 4 heads x x-transformers' DEFAULT_DIM_HEAD


def torch_timestep_table(max_len, d):
  """MDM's PositionalEncoding buffer (max_len, d) as torch computes it: every op in float32,
  in torch's order -- position = arange(max_len).float(); div_term = exp(arange(0, d, 2)
  .float() * (-log(10000) / d)) (the Python scalar is rounded to float32);
  pe[:, 0::2] = sin(position * div_term); pe[:, 1::2] = cos(position * div_term)."""
  f32 = np.float32
  div_term = np.exp(np.arange(0, d, 2).astype(f32) * f32(-np.log(10000.0) / d))
  angle = np.arange(max_len, dtype=f32)[:, None] * div_term
  assert div_term.dtype == angle.dtype == f32
  pe = np.zeros((max_len, d), f32)
  pe[:, 0::2], pe[:, 1::2] = np.sin(angle), np.cos(angle)
  return pe


def upstream_state_dict(rng, njoints, d, layers, ff, clip_dim=512):
  """Random weights under upstream's names and torch shapes (Linear: (out, in))."""
  def lin(name, n_out, n_in, bias=True):
    bound = 1 / np.sqrt(n_in)
    sd[name + '.weight'] = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
    if bias:
      sd[name + '.bias'] = rng.uniform(-bound, bound, (n_out,)).astype(np.float32)

  def ln(name):
    sd[name + '.weight'] = (1 + 0.1 * rng.normal(size=d)).astype(np.float32)
    sd[name + '.bias'] = (0.1 * rng.normal(size=d)).astype(np.float32)

  sd = {}
  inner = HEADS * DIM_HEAD
  lin('input_process.poseEmbedding', d, njoints)
  lin('embed_timestep.time_embed.0', d, d)
  lin('embed_timestep.time_embed.2', d, d)
  sd['embed_timestep.sequence_pos_encoder.pe'] = torch_timestep_table(5000, d)[:, None]
  sd['sequence_pos_encoder.pe'] = sd['embed_timestep.sequence_pos_encoder.pe']
  lin('embed_text', d, clip_dim)
  sd['seqTransEncoder.pos_emb.absolute.scale'] = np.array([d ** -0.5 * 1.7], np.float32)
  lin('seqTransEncoder.project_in', d, d)
  rot = max(DIM_HEAD // 2, 32)
  sd['seqTransEncoder.attn_layers.rotary_pos_emb.relative.inv_freq'] = (
      1.0 / 10000 ** (np.arange(0, rot, 2) / rot)).astype(np.float32)
  for i in range(layers):
    a, f = f'seqTransEncoder.attn_layers.layers.{2 * i}.', f'seqTransEncoder.attn_layers.layers.{2 * i + 1}.'
    ln(a + '0.0')
    lin(a + '1.custom_query_fn', d, 2 * d)
    for n in ('to_q', 'to_k', 'to_v'):
      lin(a + f'1.{n}', inner, d, bias=False)
    lin(a + '1.to_out', d, inner, bias=False)
    ln(f + '0.0')
    lin(f + '1.ff.0.0', ff, d)
    lin(f + '1.ff.3', d, ff)
  ln('seqTransEncoder.attn_layers.final_norm')
  lin('seqTransEncoder.project_out', d, d)
  lin('output_process.poseFinal', njoints, d)
  return sd


def _ln(x, sd, name):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + 1e-5) * sd[name + '.weight'] + sd[name + '.bias']


def _lin(x, sd, name, bias=True):
  y = x @ sd[name + '.weight'].T
  return y + sd[name + '.bias'] if bias else y


def _rotate_half(t):
  t1, t2 = np.split(t, 2, axis=-1)
  return np.concatenate([-t2, t1], -1)


def upstream_forward(sd, x, timesteps, y, w, horizon, layers):
  """numpy transcription of FlowMDM.forward in training mode with dropout 0.

  x: [bs, njoints, 1, T]; y: mask [bs, 1, 1, T], text_embeddings [I, bs, 512],
  conditions_mask [I, T, bs], pe_bias [bs, T, T], pos_pe_abs [bs, T]; w [bs] in {0, 1}.
  """
  bs, nj, nf, t = x.shape
  d = sd['project_out' if False else 'seqTransEncoder.project_out.weight'].shape[0]
  mask = y['mask'].reshape(bs, t).astype(bool)
  # compute_embedding (multi-text): time + sum_i mask_i * embed_text(text_i)
  pe = sd['embed_timestep.sequence_pos_encoder.pe'][:, 0]
  temb = _lin(pe[timesteps], sd, 'embed_timestep.time_embed.0')
  temb = temb / (1 + np.exp(-temb))                                    # SiLU
  temb = _lin(temb, sd, 'embed_timestep.time_embed.2')[None]           # [1, bs, d]
  enc = y['text_embeddings']
  embedded = _lin(enc.reshape(-1, enc.shape[-1]), sd, 'embed_text').reshape(enc.shape[:2] + (d,))
  cond = np.zeros((t, bs, d))
  for i in range(enc.shape[0]):
    cond = cond + y['conditions_mask'][i][..., None] * embedded[i][None]
  emb = (temb + cond).transpose(1, 0, 2)                               # [bs, T, d]
  # input_process, then ContinuousTransformerWrapper
  h = _lin(x.transpose(3, 0, 1, 2).reshape(t, bs, nj * nf), sd, 'input_process.poseEmbedding')
  h = h.transpose(1, 0, 2)
  h = _lin(h, sd, 'seqTransEncoder.project_in')
  half = d // 2
  inv = 10000.0 ** -(np.arange(half) / half)
  ang = np.arange(t)[:, None] * inv
  table = np.concatenate([np.sin(ang), np.cos(ang)], -1) * sd['seqTransEncoder.pos_emb.absolute.scale']
  gathered = table[y['pos_pe_abs'].astype(int)]                        # torch.gather on positions
  pe_bias = y['pe_bias'].copy()
  pe_bias[w == 1] = 0                                                  # in-place, as BPE modules do
  h = h + (1 - w)[:, None, None] * gathered
  # BPE_Rotary: freqs = w * cat(f, f) over global positions
  inv_rot = sd['seqTransEncoder.attn_layers.rotary_pos_emb.relative.inv_freq']
  f = np.arange(t)[:, None] * inv_rot
  freqs = w[:, None, None] * np.concatenate([f, f], -1)[None]          # [bs, T, r]
  fr = freqs[:, None]                                                  # [bs, 1, T, r]
  dist = np.arange(t)[:, None] - np.arange(t)[None]
  masked = (~mask[:, None, None, :]) | (dist > horizon)[None, None] | (dist < -horizon)[None, None]
  for i in range(layers):
    a = f'seqTransEncoder.attn_layers.layers.{2 * i}.'
    xn = _ln(h, sd, a + '0.0')
    q_in = _lin(np.concatenate([xn, emb], -1), sd, a + '1.custom_query_fn')
    q = _lin(q_in, sd, a + '1.to_q', False).reshape(bs, t, HEADS, DIM_HEAD).transpose(0, 2, 1, 3)
    k = _lin(xn, sd, a + '1.to_k', False).reshape(bs, t, HEADS, DIM_HEAD).transpose(0, 2, 1, 3)
    v = _lin(xn, sd, a + '1.to_v', False).reshape(bs, t, HEADS, DIM_HEAD).transpose(0, 2, 1, 3)
    r = fr.shape[-1]
    q = np.concatenate([q[..., :r] * np.cos(fr) + _rotate_half(q[..., :r]) * np.sin(fr), q[..., r:]], -1)
    k = np.concatenate([k[..., :r] * np.cos(fr) + _rotate_half(k[..., :r]) * np.sin(fr), k[..., r:]], -1)
    dots = q @ k.transpose(0, 1, 3, 2) * DIM_HEAD ** -0.5 + pe_bias[:, None]
    dots = np.where(masked, -np.finfo(np.float32).max, dots)
    dots = dots - dots.max(-1, keepdims=True)
    attn = np.exp(dots)
    attn = attn / attn.sum(-1, keepdims=True)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(bs, t, HEADS * DIM_HEAD)
    out = _lin(out, sd, a + '1.to_out', False) * mask[..., None]
    h = h + out
    fkey = f'seqTransEncoder.attn_layers.layers.{2 * i + 1}.'
    u = _lin(_ln(h, sd, fkey + '0.0'), sd, fkey + '1.ff.0.0')
    u = 0.5 * u * (1 + special.erf(u / np.sqrt(2)))                    # nn.GELU()
    h = h + _lin(u, sd, fkey + '1.ff.3')
  h = _ln(h, sd, 'seqTransEncoder.attn_layers.final_norm')
  h = _lin(h, sd, 'seqTransEncoder.project_out').transpose(1, 0, 2)    # [T, bs, d]
  out = _lin(h, sd, 'output_process.poseFinal')                        # [T, bs, F]
  return out.reshape(t, bs, nj, nf).transpose(1, 2, 3, 0)


def collate(all_lengths, t):
  """Upstream's collate for multi-text batches: masks, conditions, pe_bias, pos_pe_abs."""
  bs = len(all_lengths)
  smax = max(len(ls) for ls in all_lengths)
  cond = np.zeros((smax, t, bs))
  pos = np.zeros((bs, t))
  bias = np.full((bs, t, t), -np.inf)
  mask = np.zeros((bs, 1, 1, t), bool)
  for b, ls in enumerate(all_lengths):
    s = 0
    for j, n in enumerate(ls):
      cond[j, s:s + n, b] = 1
      pos[b, s:s + n] = np.arange(n)
      bias[b, s:s + n, s:s + n] = 0
      s += n
    mask[b, ..., :s] = True
  return {'mask': mask, 'conditions_mask': cond, 'pos_pe_abs': pos, 'pe_bias': bias}


def _flax_forward(sd, cfg, x, timesteps, y, w, horizon):
  model = model_lib.FlowMDMDenoiser(
      input_dim=cfg['input_dim'], latent_dim=cfg['latent_dim'], num_layers=cfg['num_layers'],
      num_heads=HEADS, head_dim=DIM_HEAD, ff_size=cfg['ff_size'], dropout=0.0,
      layer_dropout=0.0, rpe_horizon=horizon, text_dim=512)
  bs, _, _, t = x.shape
  seg = np.full((bs, t), -1, np.int32)
  for b in range(bs):
    for j in range(y['conditions_mask'].shape[0]):
      seg[b, y['conditions_mask'][j, :, b] > 0] = j
  flax_model = model_lib.FlowMDM(denoiser=model)
  params = {'denoiser': convert.denoiser_params(sd, HEADS)}
  params = convert.load_into(params, sd, dict(cfg, num_heads=HEADS, head_dim=DIM_HEAD))
  out = flax_model.apply({'params': params}, jnp.asarray(x[:, :, 0].transpose(0, 2, 1)),
                         jnp.asarray(timesteps), text=jnp.asarray(y['text_embeddings'].transpose(1, 0, 2)),
                         segment_ids=jnp.asarray(seg), mask=jnp.asarray(seg >= 0),
                         bpe_w=jnp.asarray(w, jnp.float32), train=False)
  return np.asarray(out)


@pytest.mark.parametrize('njoints,d,layers,ff,horizon,t', [(20, 64, 2, 128, 5, 24),
                                                          (263, 512, 8, 1024, 150, 40)],
                         ids=['small', 'paper_size'])
def test_converted_weights_reproduce_upstream_forward(njoints, d, layers, ff, horizon, t):
  rng = np.random.default_rng(0)
  sd = upstream_state_dict(rng, njoints, d, layers, ff)
  cfg = convert.config_from_state_dict(sd)
  assert cfg == {'input_dim': njoints, 'latent_dim': d, 'num_layers': layers, 'ff_size': ff,
                 'text_dim': 512, 'inner_dim': 256}
  all_lengths = [[t // 3, t // 3, t - 2 * (t // 3)], [t // 2, t // 2 - 3], [t - 4]]   # padding
  y = collate(all_lengths, t)
  y['text_embeddings'] = rng.normal(size=(3, 3, 512)).astype(np.float32)
  x = rng.normal(size=(3, njoints, 1, t)).astype(np.float32)
  timesteps = np.array([3, 500, 999])
  valid = y['mask'][:, 0, 0]
  for w in (np.zeros(3), np.ones(3), np.array([0.0, 1.0, 0.0])):   # absolute, relative, mixed
    ref = upstream_forward(sd, x.astype(np.float64), timesteps, y, w, horizon, layers)
    ours = _flax_forward(sd, cfg, x, timesteps, y, w, horizon)
    ref = ref[:, :, 0].transpose(0, 2, 1)
    np.testing.assert_allclose(ours[valid], ref[valid], rtol=1e-4, atol=2e-5, err_msg=str(w))
    # Padded frames too: upstream gives them absolute position 0 (issue 11, item 2).
    np.testing.assert_allclose(ours[~valid], ref[~valid], rtol=1e-4, atol=2e-5, err_msg=str(w))


def test_converter_names_wrong_checkpoints():
  sd = upstream_state_dict(np.random.default_rng(1), 10, 64, 2, 128)
  params = {'denoiser': convert.denoiser_params(sd, HEADS)}
  cfg = dict(convert.config_from_state_dict(sd), num_heads=HEADS, head_dim=DIM_HEAD)
  with pytest.raises(ValueError, match='latent_dim'):
    convert.load_into(params, sd, dict(cfg, latent_dim=128))
  with pytest.raises(ValueError, match='does not know'):
    convert.load_into(params, dict(sd, **{'weird.weight': np.zeros(1)}), cfg)
  bad = dict(sd)
  bad['embed_timestep.sequence_pos_encoder.pe'] = bad['embed_timestep.sequence_pos_encoder.pe'] + 1
  with pytest.raises(ValueError, match='sinusoid'):
    convert.load_into(params, bad, cfg)
  # CLIP and SMPL buffers of a full checkpoint are skipped.
  full = dict(sd, **{'clip_model.token_embedding.weight': np.zeros(2),
                     'rot2xyz.smpl_model.betas': np.zeros(2)})
  convert.load_into(params, full, cfg)


def test_genuine_float32_timestep_table_loads():
  """Torch's float32 table is off the exact sinusoid by more than the old fixed atol 1e-4
  (which refused genuine checkpoints); the rows the diffusion steps use load, and a table
  wrong on a used row is still refused."""
  d = 512
  sd = upstream_state_dict(np.random.default_rng(2), 10, d, 1, 64)
  pe = sd['embed_timestep.sequence_pos_encoder.pe'][:, 0]
  exact = positional.sinusoid_interleaved(5000, d)
  err = np.abs(pe - exact).max(axis=1)
  assert not np.allclose(pe, exact, atol=1e-4)        # the old check's verdict
  assert err[2700:].max() > 2e-4 and err[:1000].max() < 1e-4
  params = {'denoiser': convert.denoiser_params(sd, HEADS)}
  cfg = dict(convert.config_from_state_dict(sd), num_heads=HEADS, head_dim=DIM_HEAD)
  convert.load_into(params, sd, cfg, rows_used=1000)
  convert.load_into(params, sd, cfg)                  # whole table: within float32 rounding
  for row, off in ((10, 1e-4), (999, 1e-3)):
    bad = dict(sd)
    bad['embed_timestep.sequence_pos_encoder.pe'] = pe.copy()[:, None]
    bad['embed_timestep.sequence_pos_encoder.pe'][row, 0, 0] += off
    with pytest.raises(ValueError, match=f'row {row} is off'):
      convert.load_into(params, bad, cfg, rows_used=1000)
  bad['embed_timestep.sequence_pos_encoder.pe'] = pe.copy()[:, None]
  bad['embed_timestep.sequence_pos_encoder.pe'][3000, 0, 0] += 1e-2   # a row never used
  convert.load_into(params, bad, cfg, rows_used=1000)
  with pytest.raises(ValueError, match='row 3000'):
    convert.load_into(params, bad, cfg)
  with pytest.raises(ValueError, match='uses 6000'):
    convert.load_into(params, sd, cfg, rows_used=6000)
