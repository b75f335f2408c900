"""FocusMAE's video MAE (model.py) and pre-training losses (losses.py) against truth."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.projects.focusmae import losses
from jaxvision.projects.focusmae import model as model_lib

TINY = dict(frames=4, image_size=(32, 48), tubelet=2, patch=16, mask_ratio=0.5,
            encoder_width=32, encoder_depth=2, encoder_heads=4, decoder_width=16,
            decoder_depth=1, decoder_heads=2)


def _np_tube(video, b, t, h, w, tubelet=2, patch=16):
  return video[b, t * tubelet:(t + 1) * tubelet, h * patch:(h + 1) * patch,
               w * patch:(w + 1) * patch]          # (tubelet, patch, patch, C)


def test_patchify_and_normalized_targets_against_numpy():
  rng = np.random.default_rng(0)
  video = rng.uniform(size=(2, 4, 32, 48, 3)).astype(np.float32)
  tgt = np.asarray(losses.normalized_targets(jnp.asarray(video)))
  assert tgt.shape == (2, 2 * 2 * 3, 2 * 16 * 16 * 3)
  for b in range(2):
    k = 0
    for t in range(2):
      for h in range(2):
        for w in range(3):
          tube = _np_tube(video, b, t, h, w).reshape(-1, 3).astype(np.float64)
          ref = (tube - tube.mean(0)) / (tube.std(0, ddof=1) + 1e-6)
          np.testing.assert_allclose(tgt[b, k], ref.reshape(-1), rtol=1e-4, atol=1e-4)
          raw = np.asarray(losses.patchify(jnp.asarray(video)))[b, k]
          np.testing.assert_array_equal(raw, _np_tube(video, b, t, h, w).reshape(-1, 3))
          k += 1


def _mask(n, n_vis, key):
  perm = jax.random.permutation(key, n)
  return jnp.zeros((n,), bool).at[perm[n_vis:]].set(True)


@pytest.fixture(scope='module')
def tiny():
  m = model_lib.VideoMAE(**TINY)
  video = jax.random.uniform(jax.random.key(0), (2, 4, 32, 48, 3))
  mask = jnp.stack([_mask(m.num_tokens, m.num_visible, jax.random.key(i)) for i in (1, 2)])
  params = nn.meta.unbox(m.init(jax.random.key(3), model_lib.normalize_video(video), mask))['params']
  return m, params, video, mask


def test_shapes_and_counts(tiny):
  m, params, video, mask = tiny
  assert m.num_tokens == 12 and m.num_visible == 6
  pred = m.apply({'params': params}, model_lib.normalize_video(video), mask)
  assert pred.shape == (2, 6, 1536)
  assert set(params) == {'encoder', 'encoder_to_decoder', 'mask_token', 'decoder'}
  assert 'bias' not in params['encoder_to_decoder']
  assert params['encoder']['blocks_0']['attn']['qkv']['kernel'].shape == (32, 3, 4, 8)
  assert model_lib.VideoMAE().num_tokens == 1568 and model_lib.VideoMAE().num_visible == 313


def test_predictions_ignore_masked_pixels(tiny):
  """The encoder sees visible tubes only: changing masked tubes changes nothing."""
  m, params, video, mask = tiny
  f = lambda v: m.apply({'params': params}, model_lib.normalize_video(v), mask)  # pylint: disable=g-long-lambda
  base = f(video)
  grid = m.grid
  noise = np.zeros(video.shape, np.float32)
  noise_vis = np.zeros(video.shape, np.float32)
  for b in range(2):
    for k in range(m.num_tokens):
      t, r = divmod(k, grid[1] * grid[2])
      h, w = divmod(r, grid[2])
      sl = (b, slice(2 * t, 2 * t + 2), slice(16 * h, 16 * h + 16), slice(16 * w, 16 * w + 16))
      (noise if bool(mask[b, k]) else noise_vis)[sl] = 0.5
  np.testing.assert_allclose(f(video + noise), base, atol=1e-5)
  assert np.abs(np.asarray(f(video + noise_vis) - base)).max() > 1e-3


def test_encoder_invariant_to_visible_token_order(tiny):
  m, params, video, mask = tiny
  enc = model_lib.Encoder(32, 2, 4, tubelet=2, patch=16)
  vis, _ = model_lib.split_index(mask, m.num_visible)
  p = {'params': params['encoder']}
  x = model_lib.normalize_video(video)
  out = enc.apply(p, x, vis)
  perm = jnp.array([3, 0, 5, 1, 4, 2])
  out_perm = enc.apply(p, x, vis[:, perm])
  np.testing.assert_allclose(out_perm, out[:, perm], atol=1e-5)


def test_tube_embedding_is_a_linear_map_of_each_tube(tiny):
  m, params, video, _ = tiny
  emb = model_lib.TubeEmbed(32)
  p = {'params': params['encoder']['patch_embed']}
  tokens = np.asarray(emb.apply(p, video))
  kernel = np.asarray(params['encoder']['patch_embed']['proj']['kernel'])  # (2,16,16,3,32)
  bias = np.asarray(params['encoder']['patch_embed']['proj']['bias'])
  tube = _np_tube(np.asarray(video), 1, 1, 0, 2)
  ref = np.einsum('thwc,thwcd->d', tube, kernel) + bias
  np.testing.assert_allclose(tokens[1, 1 * 6 + 0 * 3 + 2], ref, rtol=1e-4, atol=1e-4)


def test_sinusoid_table_closed_form():
  tab = np.asarray(model_lib.sinusoid_table(10, 8))[0]
  pos, j = 7, np.arange(8)
  angle = pos / np.power(10000, 2 * (j // 2) / 8)
  ref = np.where(j % 2 == 0, np.sin(angle), np.cos(angle))
  np.testing.assert_allclose(tab[pos], ref, rtol=1e-5, atol=1e-6)


def test_reconstruction_loss_zero_at_target_and_masked_only(tiny):
  m, _, video, mask = tiny
  _, masked = model_lib.split_index(mask, m.num_visible)
  target = model_lib.gather_tokens(losses.normalized_targets(video), masked)
  loss, per_tok = losses.reconstruction_loss(target, video, masked)
  assert float(loss) < 1e-10 and per_tok.shape == (2, 6)
  loss1, per_tok1 = losses.reconstruction_loss(target + 1.0, video, masked)
  np.testing.assert_allclose(loss1, 1.0, rtol=1e-6)


def test_sampling_loss_gradient_is_reinforce():
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.normal(size=(2, 12)).astype(np.float32))
  masked = jnp.asarray([[0, 3, 5], [11, 2, 7]])
  r = jnp.asarray(rng.uniform(size=(2, 3)).astype(np.float32))
  g_logits, g_r = jax.grad(losses.sampling_loss, argnums=(0, 2))(logits, masked, r)
  np.testing.assert_array_equal(g_r, 0.0)          # stop-gradient on l_r
  p = np.asarray(jax.nn.softmax(logits))
  ref = np.zeros((2, 12))
  for b in range(2):
    for k in range(3):
      onehot = np.eye(12)[int(masked[b, k])]
      ref[b] += -(onehot - p[b]) * float(r[b, k]) / 6.0
  np.testing.assert_allclose(g_logits, ref, rtol=1e-5, atol=1e-7)


def test_bad_shapes_refused(tiny):
  m, params, video, mask = tiny
  with pytest.raises(ValueError, match='mask has shape'):
    m.apply({'params': params}, video, mask[:, :5])
  with pytest.raises(ValueError, match='not tiled'):
    model_lib.token_grid(3, 32, 32)
  with pytest.raises(ValueError, match='mask_ratio'):
    _ = model_lib.VideoMAE(**{**TINY, 'mask_ratio': 0.99}).num_visible


def test_adaptive_sampler_logits_and_gradient():
  """AdaMAE's token-probability network: (B, N) logits; l_s trains it, l_r does not."""
  from jaxvision.projects import focusmae  # pylint: disable=g-import-not-at-top
  cfg = focusmae.default_config()
  cfg.model.update(frames=4, image_size=(32, 48), mask_ratio=0.5, encoder_width=32,
                   encoder_depth=1, encoder_heads=4, decoder_width=16, decoder_depth=1,
                   decoder_heads=2, adaptive=True, sampler_heads=4)
  m = focusmae.make_model(cfg.model)
  batch = {'video': jax.random.uniform(jax.random.key(0), (2, 4, 32, 48, 3)),
           'boxes': jnp.array([[[0., 0., 20., 20.]], [[10., 5., 40., 30.]]]),
           'box_valid': jnp.array([[True], [False]])}
  params = nn.meta.unbox(focusmae.init_params(m, jax.random.key(1), batch))
  assert 'get_token_probs' in params
  logits = m.apply({'params': params}, batch['video'], method=model_lib.VideoMAE.token_logits)
  assert logits.shape == (2, 12)
  grads_fn = jax.grad(lambda p, w: focusmae.loss_fn(  # pylint: disable=g-long-lambda
      p, batch, jax.random.key(2), model=m,
      config=_with(cfg, w))[0])
  g = grads_fn(params, 1e-4)
  norm = lambda t: float(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(t)))  # pylint: disable=g-long-lambda
  assert norm(g['get_token_probs']) > 0
  assert norm(grads_fn(params, 0.0)['get_token_probs']) == 0.0   # only l_s reaches it
  loss, metrics = focusmae.loss_fn(params, batch, jax.random.key(2), model=m, config=cfg)
  np.testing.assert_allclose(loss, metrics['reconstruction'] + 1e-4 * metrics['sampling'],
                             rtol=1e-6)


def _with(cfg, weight):
  c = cfg.copy_and_resolve_references()
  c.loss.sampling_weight = weight
  return c


def test_classifier_mean_pool_fc_norm_head_and_shared_names(tiny):
  m, pre_params, video, _ = tiny
  clf = model_lib.VideoClassifier(num_classes=2, width=32, depth=2, num_heads=4,
                                  drop_path=0.5)
  x = model_lib.normalize_video(video)
  params = nn.meta.unbox(clf.init(jax.random.key(0), x))['params']
  logits = clf.apply({'params': params}, x)
  assert logits.shape == (2, 2) and float(jnp.abs(logits).max()) < 0.01   # init_scale 1e-3
  # by hand: encoder on all tokens (no final norm) -> mean -> LayerNorm -> head
  enc = model_lib.Encoder(32, 2, 4, final_norm=False)
  tokens = enc.apply({'params': params['encoder']}, x, None)
  pooled = tokens.mean(1)
  mu, var = pooled.mean(-1, keepdims=True), pooled.var(-1, keepdims=True)
  ln = (pooled - mu) / jnp.sqrt(var + 1e-6) * params['fc_norm']['scale'] + params['fc_norm']['bias']
  ref = ln @ params['head']['kernel'] + params['head']['bias']
  np.testing.assert_allclose(logits, ref, rtol=1e-4, atol=1e-6)
  # the pre-training encoder's sub-tree (minus its final norm) has the same names/shapes
  shapes = lambda t: jax.tree.map(lambda a: a.shape, t)  # pylint: disable=g-long-lambda
  pre = {k: v for k, v in pre_params['encoder'].items() if k != 'norm'}
  assert shapes(pre) == shapes(params['encoder'])
  # drop path: identity at eval; at train, per-sample random, deterministic per key
  a = clf.apply({'params': params}, x, train=True, rngs={'dropout': jax.random.key(1)})
  b = clf.apply({'params': params}, x, train=True, rngs={'dropout': jax.random.key(1)})
  np.testing.assert_array_equal(a, b)
  outs = [clf.apply({'params': params}, x, train=True, rngs={'dropout': jax.random.key(k)})
          for k in range(2, 10)]
  assert any(not np.allclose(o, logits, atol=1e-7) for o in outs)   # a branch was dropped
