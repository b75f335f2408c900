"""The FlowMDM denoiser: masks against numpy, BPE gating, PCCAT's condition path."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import positional
from jaxvision.projects.flowmdm import layers
from jaxvision.projects.flowmdm import model as model_lib


def test_segment_helpers_match_numpy():
  ids = np.array([[0, 0, 0, 1, 1, 2, 2, 2, -1, -1]])
  pos = np.asarray(layers.positions_in_segment(jnp.asarray(ids)))
  np.testing.assert_array_equal(pos, [[0, 1, 2, 0, 1, 0, 1, 2, 0, 1]])
  # APE positions as upstream's collate: padded frames all at position 0.
  ape = np.asarray(layers.ape_positions(jnp.asarray(ids), jnp.asarray(ids >= 0)))
  np.testing.assert_array_equal(ape, [[0, 1, 2, 0, 1, 0, 1, 2, 0, 0]])
  bias = np.asarray(layers.segment_bias(jnp.asarray(ids)))
  for i in range(10):
    for j in range(10):
      assert bias[0, i, j] == (0.0 if ids[0, i] == ids[0, j] else -np.inf)
  mask = np.array([[1, 1, 1, 1, 1, 1, 1, 0]], bool)
  allowed = np.asarray(layers.attention_allowed(jnp.asarray(mask), 2))
  for i in range(8):
    for j in range(8):
      assert allowed[0, i, j] == (abs(i - j) <= 2 and mask[0, j])
  assert np.asarray(layers.attention_allowed(jnp.asarray(mask), -1))[0, 0, 6]


def _attention_inputs(b=2, t=7, d=16, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(b, t, d)), jnp.float32)
  cond = jnp.asarray(rng.normal(size=(b, t, d)), jnp.float32)
  mask = jnp.ones((b, t), bool)
  return x, cond, mask


def test_zero_bpe_weight_means_no_rotation():
  x, cond, mask = _attention_inputs()
  attn = layers.pccat_attention(num_heads=2, head_dim=8)
  allowed = layers.attention_allowed(mask, -1)[:, None]
  params = attn.init(jax.random.key(0), x, query_context=cond, mask=allowed)
  freqs = positional.rope_frequencies(jnp.broadcast_to(jnp.arange(7.0), (2, 7)), 4)
  w = jnp.zeros((2,))
  gated = attn.apply(params, x, query_context=cond, rope=w[:, None, None] * freqs, mask=allowed)
  plain = attn.apply(params, x, query_context=cond, mask=allowed)
  rotated = attn.apply(params, x, query_context=cond, rope=freqs, mask=allowed)
  np.testing.assert_array_equal(gated, plain)
  assert float(jnp.max(jnp.abs(rotated - plain))) > 1e-3


def test_keys_and_values_have_zero_gradient_wrt_the_condition():
  x, cond, mask = _attention_inputs()
  attn = layers.pccat_attention(num_heads=2, head_dim=8)
  allowed = layers.attention_allowed(mask, -1)[:, None]
  params = attn.init(jax.random.key(0), x, query_context=cond, mask=allowed)
  assert set(params['params']) == {'query_input', 'to_q', 'to_k', 'to_v', 'to_out'}

  def projections(c):
    _, state = attn.apply(params, x, query_context=c, mask=allowed, capture_intermediates=True)
    inter = state['intermediates']
    return {n: jnp.sum(inter[n]['__call__'][0] ** 2) for n in ('to_q', 'to_k', 'to_v')}

  grads = jax.grad(lambda c: projections(c)['to_k'] + projections(c)['to_v'])(cond)
  np.testing.assert_array_equal(grads, 0.0)
  assert float(jnp.max(jnp.abs(jax.grad(lambda c: projections(c)['to_q'])(cond)))) > 0
  # ...while the attention output does depend on the condition (through the queries).
  out_grad = jax.grad(lambda c: jnp.sum(attn.apply(params, x, query_context=c,
                                                   mask=allowed) ** 2))(cond)
  assert float(jnp.max(jnp.abs(out_grad))) > 0


def test_split_query_input_equals_the_linear_on_the_concatenation():
  x, cond, _ = _attention_inputs()
  split = layers.SplitLinear(16)
  params = split.init(jax.random.key(0), x, cond)
  dense = params['params']
  k, b = nn.meta.unbox(dense['kernel']), nn.meta.unbox(dense['bias'])
  want = np.concatenate([np.asarray(x, np.float64), np.asarray(cond, np.float64)], -1) @ k + b
  np.testing.assert_allclose(split.apply(params, x, cond), want, atol=1e-5)
  # Same parameters, init and axis names as TorchLinear(2d -> d) on the concatenation.
  from jaxvision.nn.layers import TorchLinear  # pylint: disable=g-import-not-at-top
  torch_lin = TorchLinear(16, kernel_axes=('mlp', 'embed')).init(
      jax.random.key(0), jnp.concatenate([x, cond], -1))['params']
  assert dense['kernel'].names == torch_lin['kernel'].names
  np.testing.assert_array_equal(k, nn.meta.unbox(torch_lin['kernel']))
  np.testing.assert_array_equal(b, nn.meta.unbox(torch_lin['bias']))


def _small_model(**kw):
  cfg = dict(input_dim=6, latent_dim=32, num_layers=2, num_heads=2, head_dim=16, ff_size=64,
             dropout=0.0, layer_dropout=0.0, rpe_horizon=3, text_dim=8, rotary_dim=8)
  cfg.update(kw)
  return model_lib.FlowMDMDenoiser(**cfg)


def _model_inputs(ids, seed=0):
  rng = np.random.default_rng(seed)
  ids = np.asarray(ids, np.int32)
  b, t = ids.shape
  return dict(x=jnp.asarray(rng.normal(size=(b, t, 6)), jnp.float32),
              timesteps=jnp.asarray(rng.integers(0, 1000, size=b), jnp.int32),
              text_emb=jnp.asarray(rng.normal(size=(b, ids.max() + 1, 8)), jnp.float32),
              segment_ids=jnp.asarray(ids), mask=jnp.asarray(ids >= 0))


_JITTED = {}


def _apply(m, params, inp, w):
  if id(m) not in _JITTED:
    _JITTED[id(m)] = (m, jax.jit(lambda p, x, ts, te, seg, mask, bw: m.apply(
        p, x, ts, text_emb=te, segment_ids=seg, mask=mask, bpe_w=bw, train=False)))
  fn = _JITTED[id(m)][1]
  return fn(params, inp['x'], inp['timesteps'], inp['text_emb'], inp['segment_ids'],
            inp['mask'], jnp.full((inp['x'].shape[0],), w))


def _init(m, inp):
  b = inp['x'].shape[0]
  return jax.jit(lambda: m.init(jax.random.key(0), inp['x'], inp['timesteps'],
                                text_emb=inp['text_emb'], segment_ids=inp['segment_ids'],
                                mask=inp['mask'], bpe_w=jnp.zeros(b), train=False))()


def test_absolute_stage_keeps_segments_apart_relative_stage_joins_them():
  m = _small_model(rpe_horizon=100)
  inp = _model_inputs([[0] * 6 + [1] * 6])
  params = _init(m, inp)
  changed = dict(inp, x=inp['x'].at[:, 6:].add(1.0))   # only segment 1's poses change
  for w, should_change in ((0.0, False), (1.0, True)):
    a, b = _apply(m, params, inp, w), _apply(m, params, changed, w)
    diff = float(jnp.max(jnp.abs(a[:, :6] - b[:, :6])))
    assert (diff > 1e-4) == should_change, (w, diff)


def test_band_limits_the_receptive_field():
  m = _small_model(num_layers=1, rpe_horizon=2)
  inp = _model_inputs([[0] * 12])
  params = _init(m, inp)
  changed = dict(inp, x=inp['x'].at[:, 9].add(5.0))
  for w in (0.0, 1.0):
    diff = np.asarray(jnp.max(jnp.abs(_apply(m, params, inp, w) - _apply(m, params, changed, w)),
                              axis=-1))[0]
    assert np.all(diff[:7] == 0) and np.all(diff[7:] > 0)   # |i - 9| <= 2 only


def test_padding_does_not_leak_into_valid_frames():
  m = _small_model()
  inp = _model_inputs([[0] * 5 + [1] * 4 + [-1] * 3])
  params = _init(m, inp)
  noisy = dict(inp, x=inp['x'].at[:, 9:].set(1e3))
  for w in (0.0, 1.0):
    np.testing.assert_allclose(_apply(m, params, inp, w)[:, :9],
                               _apply(m, params, noisy, w)[:, :9], atol=1e-5)


def test_stochastic_depth_is_one_draw_per_sublayer_for_the_batch():
  m = _small_model(layer_dropout=0.5)
  inp = _model_inputs([[0] * 5, [0] * 5])
  params = _init(m, inp)
  # Identical samples stay identical under the batch-shared draw.
  same = dict(inp, x=jnp.broadcast_to(inp['x'][:1], inp['x'].shape),
              timesteps=jnp.broadcast_to(inp['timesteps'][:1], (2,)),
              text_emb=jnp.broadcast_to(inp['text_emb'][:1], inp['text_emb'].shape))
  fn = jax.jit(lambda p, r: m.apply(p, same['x'], same['timesteps'], text_emb=same['text_emb'],
                                    segment_ids=same['segment_ids'], mask=same['mask'],
                                    bpe_w=jnp.zeros(2), train=True, rngs={'dropout': r}))
  outs = [fn(params, jax.random.key(s)) for s in range(6)]
  for o in outs:
    np.testing.assert_allclose(o[0], o[1], atol=1e-6)
  assert len({round(float(o[0].sum()), 4) for o in outs}) > 1   # the draws differ


def test_bad_shapes_are_named():
  m = _small_model()
  inp = _model_inputs([[0] * 5])
  params = _init(m, inp)
  with pytest.raises(ValueError, match='channels'):
    m.apply(params, jnp.zeros((1, 5, 7)), inp['timesteps'], text_emb=inp['text_emb'],
            segment_ids=inp['segment_ids'], mask=inp['mask'], bpe_w=jnp.zeros(1), train=False)
  with pytest.raises(ValueError, match='text_emb'):
    m.apply(params, inp['x'], inp['timesteps'], text_emb=jnp.zeros((1, 1, 9)),
            segment_ids=inp['segment_ids'], mask=inp['mask'], bpe_w=jnp.zeros(1), train=False)


def test_params_carry_logical_axis_names():
  m = _small_model()
  inp = _model_inputs([[0] * 5])
  boxed = jax.eval_shape(lambda: m.init(
      jax.random.key(0), inp['x'], inp['timesteps'], text_emb=inp['text_emb'],
      segment_ids=inp['segment_ids'], mask=inp['mask'], bpe_w=jnp.zeros(1),
      train=False))['params']
  leaves = jax.tree.leaves(boxed, is_leaf=lambda v: isinstance(v, nn.Partitioned))
  assert all(isinstance(v, nn.Partitioned) for v in leaves)
  assert boxed['layer_0_attn']['to_q']['kernel'].names == ('embed', 'heads', 'kv')
  assert boxed['layer_0_attn']['to_out']['kernel'].names == ('heads', 'kv', 'embed')


def test_banded_attention_equals_the_dense_band_mask():
  dense = _small_model(rpe_horizon=2)
  banded = _small_model(rpe_horizon=2, banded_attention=True)
  ids = np.array([[0] * 5 + [1] * 6 + [-1] * 3, [0] * 7 + [1] * 7])
  inp = _model_inputs(ids)
  params = _init(dense, inp)
  valid = ids >= 0
  for w in (0.0, 1.0):
    np.testing.assert_allclose(np.asarray(_apply(banded, params, inp, w))[valid],
                               np.asarray(_apply(dense, params, inp, w))[valid], atol=1e-5)
  with pytest.raises(ValueError, match='banded_attention needs'):
    _apply(_small_model(rpe_horizon=-1, banded_attention=True), params, inp, 0.0)


def test_banded_attention_flag_reaches_the_model():
  from jaxvision.projects import flowmdm  # pylint: disable=g-import-not-at-top
  cfg = flowmdm.default_config().model.to_dict()
  cfg.update(input_dim=6)
  import ml_collections  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict(cfg)
  assert not flowmdm.make_model(cfg).denoiser.banded_attention
  cfg.banded_attention = True
  assert flowmdm.make_model(cfg).denoiser.banded_attention
