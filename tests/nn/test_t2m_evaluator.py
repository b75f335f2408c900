"""Tests of jaxvision.nn.t2m_evaluator / t2m_checkpoint against an independent numpy
forward pass on state_dicts written here with the upstream (PyTorch) names and layouts.

The reference below works on PyTorch shapes directly: Conv1d weights (out, in, k),
ConvTranspose1d weights (in, out, k), Linear x W^T + b, GRU gates stacked (r, z, n)
and packed sequences (only the first `length` steps, backward from step length-1).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.nn import t2m_checkpoint as tc
from jaxvision.nn import t2m_evaluator as te

# Small config: 12 motion features (8 + 4 contacts), movement 6 -> 5, words 7 + POS 15,
# text hidden 4, motion hidden 6, co-embedding 3.
POSE, MOV_H, MOV_L, WORD, POS, TXT_H, MOT_H, CO = 12, 6, 5, 7, 15, 4, 6, 3


def lin(rng, out, inp, prefix):
  return {f'{prefix}.weight': rng.normal(size=(out, inp)) / np.sqrt(inp),
          f'{prefix}.bias': rng.normal(size=out) * 0.1}


def gru_sd(rng, inp, h, prefix):
  sd = {f'{prefix}.hidden': rng.normal(size=(2, 1, h))}
  for s in ('', '_reverse'):
    sd.update({f'{prefix}.gru.weight_ih_l0{s}': rng.uniform(-1, 1, (3 * h, inp)),
               f'{prefix}.gru.weight_hh_l0{s}': rng.uniform(-1, 1, (3 * h, h)),
               f'{prefix}.gru.bias_ih_l0{s}': rng.uniform(-1, 1, 3 * h),
               f'{prefix}.gru.bias_hh_l0{s}': rng.uniform(-1, 1, 3 * h)})
  sd.update(lin(rng, h, 2 * h, f'{prefix}.output_net.0'))
  sd.update({f'{prefix}.output_net.1.weight': 1 + rng.normal(size=h) * 0.1,
             f'{prefix}.output_net.1.bias': rng.normal(size=h) * 0.1})
  sd.update(lin(rng, CO, h, f'{prefix}.output_net.3'))
  return sd


def make_state_dict(seed=0):
  rng = np.random.default_rng(seed)
  sd = {'movement_encoder.main.0.weight': rng.normal(size=(MOV_H, POSE - 4, 4)) * 0.3,
        'movement_encoder.main.0.bias': rng.normal(size=MOV_H) * 0.1,
        'movement_encoder.main.3.weight': rng.normal(size=(MOV_L, MOV_H, 4)) * 0.3,
        'movement_encoder.main.3.bias': rng.normal(size=MOV_L) * 0.1,
        **lin(rng, MOV_L, MOV_L, 'movement_encoder.out_net'),
        **lin(rng, WORD, POS, 'text_encoder.pos_emb'),
        **lin(rng, TXT_H, WORD, 'text_encoder.input_emb'),
        **gru_sd(rng, TXT_H, TXT_H, 'text_encoder'),
        **lin(rng, MOT_H, MOV_L, 'motion_encoder.input_emb'),
        **gru_sd(rng, MOT_H, MOT_H, 'motion_encoder')}
  return {k: v.astype(np.float32) for k, v in sd.items()}


# --- Independent numpy reference ------------------------------------------------------

sigmoid = lambda x: 1 / (1 + np.exp(-x))  # pylint: disable=unnecessary-lambda-assignment
leaky = lambda x: np.where(x > 0, x, 0.2 * x)  # pylint: disable=unnecessary-lambda-assignment


def ref_linear(sd, prefix, x):
  return x @ sd[prefix + '.weight'].T + sd[prefix + '.bias']


def ref_conv1d(w, b, x, stride=2, pad=1):
  """x (T, C), w (O, C, K): y[t, o] = b[o] + sum_{c,k} w[o, c, k] x_pad[stride t + k, c]."""
  k = w.shape[2]
  xp = np.pad(x, ((pad, pad), (0, 0)))
  t_out = (len(xp) - k) // stride + 1
  return np.stack([np.einsum('ock,kc->o', w, xp[stride * t:stride * t + k]) + b
                   for t in range(t_out)])


def ref_conv_transpose1d(w, b, x, stride=2, pad=1):
  """x (T, C), w (C, O, K): each input step scatters w[c, :, k] to output stride t + k - pad."""
  t_in, k = len(x), w.shape[2]
  full = np.zeros(((t_in - 1) * stride + k, w.shape[1]))
  for t in range(t_in):
    for j in range(k):
      full[stride * t + j] += x[t] @ w[:, :, j]
  return full[pad:len(full) - pad] + b


def ref_gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
  hs = len(h)
  gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
  r = sigmoid(gi[:hs] + gh[:hs])
  z = sigmoid(gi[hs:2 * hs] + gh[hs:2 * hs])
  n = np.tanh(gi[2 * hs:] + r * gh[2 * hs:])
  return (1 - z) * n + z * h


def ref_bigru_last(sd, prefix, x, length):
  p = prefix + '.gru.'
  h = sd[prefix + '.hidden'][0, 0]
  for t in range(length):
    h = ref_gru_cell(x[t], h, sd[p + 'weight_ih_l0'], sd[p + 'weight_hh_l0'],
                     sd[p + 'bias_ih_l0'], sd[p + 'bias_hh_l0'])
  hb = sd[prefix + '.hidden'][1, 0]
  for t in reversed(range(length)):
    hb = ref_gru_cell(x[t], hb, sd[p + 'weight_ih_l0_reverse'], sd[p + 'weight_hh_l0_reverse'],
                      sd[p + 'bias_ih_l0_reverse'], sd[p + 'bias_hh_l0_reverse'])
  return np.concatenate([h, hb])


def ref_output_net(sd, prefix, x):
  y = ref_linear(sd, prefix + '.output_net.0', x)
  y = (y - y.mean()) / np.sqrt(y.var() + 1e-5)
  y = y * sd[prefix + '.output_net.1.weight'] + sd[prefix + '.output_net.1.bias']
  return ref_linear(sd, prefix + '.output_net.3', leaky(y))


def ref_movements(sd, motion):
  x = motion[:, :-4]
  x = leaky(ref_conv1d(sd['movement_encoder.main.0.weight'], sd['movement_encoder.main.0.bias'], x))
  x = leaky(ref_conv1d(sd['movement_encoder.main.3.weight'], sd['movement_encoder.main.3.bias'], x))
  return ref_linear(sd, 'movement_encoder.out_net', x)


def ref_encode_motion(sd, motion, length):
  x = ref_linear(sd, 'motion_encoder.input_emb', ref_movements(sd, motion))
  return ref_output_net(sd, 'motion_encoder', ref_bigru_last(sd, 'motion_encoder', x, length // 4))


def ref_encode_text(sd, word, pos, length):
  x = ref_linear(sd, 'text_encoder.input_emb', word + ref_linear(sd, 'text_encoder.pos_emb', pos))
  return ref_output_net(sd, 'text_encoder', ref_bigru_last(sd, 'text_encoder', x, length))


def make_inputs(seed=1):
  rng = np.random.default_rng(seed)
  motion = rng.normal(size=(3, 18, POSE)).astype(np.float32)  # 18 frames -> 4 movements.
  m_lens = np.array([18, 9, 4])
  word = rng.normal(size=(3, 6, WORD)).astype(np.float32)
  pos = np.eye(POS, dtype=np.float32)[rng.integers(0, POS, size=(3, 6))]
  t_lens = np.array([6, 3, 1])
  return word, pos, t_lens, motion, m_lens


# --- Tests -----------------------------------------------------------------------------

@pytest.mark.parametrize('as_file', [False, True])
def test_loaded_evaluator_matches_numpy(tmp_path, as_file):
  sd = make_state_dict()
  source = sd
  if as_file:
    source = tmp_path / 'finest.npz'
    np.savez(source, **sd, epoch=np.int64(3))
  model, params = tc.load_t2m_evaluator(source)
  assert (model.movement_hidden, model.movement_latent, model.text_hidden, model.motion_hidden,
          model.coemb_size) == (MOV_H, MOV_L, TXT_H, MOT_H, CO)
  word, pos, t_lens, motion, m_lens = make_inputs()
  apply = jax.jit(model.apply)
  text_emb, motion_emb = apply({'params': params}, word, pos, t_lens, motion, m_lens)
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  for i in range(3):
    np.testing.assert_allclose(text_emb[i], ref_encode_text(sd64, word[i], pos[i], t_lens[i]),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(motion_emb[i], ref_encode_motion(sd64, motion[i], m_lens[i]),
                               rtol=1e-5, atol=1e-5)
  # Steps beyond the lengths do not matter (packed sequences). Sample 2 has 4 frames,
  # so one movement, whose receptive field is frames 0..6: frames 8+ are ignored.
  word2, motion2 = word.copy(), motion.copy()
  word2[1, 3:] = 100.0
  motion2[2, 8:] = -50.0
  got_t, got_m = apply({'params': params}, word2, pos, t_lens, motion2, m_lens)
  np.testing.assert_allclose(got_t, text_emb, atol=1e-6)
  np.testing.assert_allclose(got_m[2], motion_emb[2], atol=1e-6)


def test_humanml3d_sizes():
  # The released HumanML3D evaluator: 263 features, 196 frames -> 49 movements, GloVe 300.
  model = te.T2MEvaluator()
  args = (jnp.zeros((2, 22, 300)), jnp.zeros((2, 22, 15)), np.array([22, 5]),
          jnp.zeros((2, 196, 263)), np.array([196, 40]))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), *args))
  text_emb, motion_emb = jax.eval_shape(lambda v: model.apply(v, *args), variables)
  assert text_emb.shape == motion_emb.shape == (2, 512)
  movements = jax.eval_shape(lambda v: model.apply(v, args[3], method='movements'), variables)
  assert movements.shape == (2, 49, 512)
  gru = variables['params']['motion_encoder']['gru']
  assert gru['forward_input_kernel'].value.shape == (1024, 3 * 1024)


def test_loader_errors_name_the_key():
  sd = make_state_dict()
  del sd['text_encoder.gru.bias_hh_l0_reverse']
  with pytest.raises(KeyError, match='text_encoder.gru.bias_hh_l0_reverse'):
    tc.load_t2m_evaluator(sd)
  sd = make_state_dict()
  sd['motion_encoder.hidden'] = sd['motion_encoder.hidden'][0]
  with pytest.raises(ValueError, match=r"'motion_encoder.hidden' should have 3 dims"):
    tc.load_t2m_evaluator(sd)
  sd = make_state_dict()
  sd['motion_encoder.gru.weight_hh_l0'] = np.zeros((3 * MOT_H, MOT_H + 1), np.float32)
  with pytest.raises(ValueError, match='forward_hidden_kernel'):
    tc.load_t2m_evaluator(sd)


def test_input_errors():
  model, params = tc.load_t2m_evaluator(make_state_dict())
  word, pos, t_lens, motion, m_lens = make_inputs()
  with pytest.raises(ValueError, match=r'sentence lengths must be a vector in \[1, 6\]'):
    model.apply({'params': params}, word, pos, np.array([7, 1, 1]), method='encode_text')
  with pytest.raises(ValueError, match='motion lengths // 4'):
    model.apply({'params': params}, motion, np.array([3, 8, 8]), method='encode_motion')
  with pytest.raises(ValueError, match='must agree'):
    model.apply({'params': params}, word, pos[:, :2], t_lens, method='encode_text')
  with pytest.raises(ValueError, match='features > 4'):
    model.apply({'params': params}, motion[..., :4], m_lens, method='encode_motion')


def test_conv_transpose_and_movement_autoencoder_loader():
  rng = np.random.default_rng(2)
  sd = {'movement_enc.main.0.weight': rng.normal(size=(MOV_H, POSE - 4, 4)),
        'movement_enc.main.0.bias': rng.normal(size=MOV_H),
        'movement_enc.main.3.weight': rng.normal(size=(MOV_L, MOV_H, 4)),
        'movement_enc.main.3.bias': rng.normal(size=MOV_L),
        **lin(rng, MOV_L, MOV_L, 'movement_enc.out_net'),
        'movement_dec.main.0.weight': rng.normal(size=(MOV_L, MOV_H, 4)) * 0.3,
        'movement_dec.main.0.bias': rng.normal(size=MOV_H) * 0.1,
        'movement_dec.main.2.weight': rng.normal(size=(MOV_H, POSE, 4)) * 0.3,
        'movement_dec.main.2.bias': rng.normal(size=POSE) * 0.1,
        **lin(rng, POSE, POSE, 'movement_dec.out_net')}
  sd = {k: v.astype(np.float32) for k, v in sd.items()}
  encoder, decoder, enc_p, dec_p = tc.load_movement_autoencoder(sd)
  latents = rng.normal(size=(2, 5, MOV_L)).astype(np.float32)
  got = decoder.apply({'params': dec_p}, latents)
  assert got.shape == (2, 20, POSE)
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  for b in range(2):
    y = leaky(ref_conv_transpose1d(sd64['movement_dec.main.0.weight'],
                                   sd64['movement_dec.main.0.bias'], latents[b]))
    y = leaky(ref_conv_transpose1d(sd64['movement_dec.main.2.weight'],
                                   sd64['movement_dec.main.2.bias'], y))
    np.testing.assert_allclose(got[b], ref_linear(sd64, 'movement_dec.out_net', y), rtol=1e-5,
                               atol=1e-5)
  motion = rng.normal(size=(2, 20, POSE)).astype(np.float32)
  mov = encoder.apply({'params': enc_p}, motion[..., :-4])
  ref = {k.replace('movement_enc.', 'movement_encoder.'): v for k, v in sd64.items()}
  np.testing.assert_allclose(mov[1], ref_movements(ref, motion[1]), rtol=1e-5, atol=1e-5)
  # The autoencoder loss: L1 + 1e-3 mean|z| + 1e-3 mean|z[1:] - z[:-1]|.
  loss, parts = te.movement_autoencoder_loss(motion, got, latents)
  want = (np.abs(got - motion).mean() + 1e-3 * np.abs(latents).mean()
          + 1e-3 * np.abs(np.diff(latents, axis=1)).mean())
  assert loss == pytest.approx(want, rel=1e-5) and set(parts) == {'loss_rec', 'loss_sparsity',
                                                                   'loss_smooth'}
  mask = np.zeros((2, 20))
  mask[:, :3] = 1
  loss_m, _ = te.movement_autoencoder_loss(motion, got, latents, mask=mask)
  assert float(loss_m) == pytest.approx(
      np.abs(got - motion)[:, :3].mean() + 1e-3 * np.abs(latents).mean()
      + 1e-3 * np.abs(np.diff(latents, axis=1)).mean(), rel=1e-5)


def test_contrastive_loss_closed_form():
  t = jnp.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
  m = jnp.array([[0.0, 1.0], [3.0, 4.0], [7.0, 0.0]])
  eps = 1e-6
  d = lambda a, b: np.sqrt(np.sum((np.asarray(a) - np.asarray(b) + eps) ** 2))  # pylint: disable=unnecessary-lambda-assignment
  loss, parts = te.contrastive_loss(t, m, shift=1, margin=5.0)
  pos = np.mean([d(t[i], m[i]) ** 2 for i in range(3)])
  neg = np.mean([max(5.0 - d(t[i], m[(i + 1) % 3]), 0) ** 2 for i in range(3)])
  assert float(parts['loss_pos']) == pytest.approx(pos, rel=1e-6)
  assert float(parts['loss_neg']) == pytest.approx(neg, rel=1e-6)
  assert float(loss) == pytest.approx(pos + neg, rel=1e-6)
  # Shift 0 (upstream can draw it): the negatives are the true pairs.
  _, parts0 = te.contrastive_loss(t, m, shift=0, margin=5.0)
  assert float(parts0['loss_neg']) == pytest.approx(
      np.mean([max(5.0 - d(t[i], m[i]), 0) ** 2 for i in range(3)]), rel=1e-6)
  with pytest.raises(ValueError, match='one shape'):
    te.contrastive_loss(t, m[:2], shift=1)


def test_negative_shift_ranges():
  keys = jax.random.split(jax.random.key(0), 400)
  up = np.asarray(jax.vmap(lambda k: te.negative_shift(k, 5))(keys[:200]))
  clean = np.asarray(jax.vmap(lambda k: te.negative_shift(k, 5, upstream=False))(keys[200:]))
  assert set(up.tolist()) == {0, 1, 2, 3} and set(clean.tolist()) == {1, 2, 3, 4}
  with pytest.raises(ValueError, match='at least 2'):
    te.negative_shift(keys[0], 1)


def test_text_features_as_upstream():
  vecs = {w: np.full(3, i, np.float32) for i, w in enumerate(['sos', 'eos', 'unk', 'a', 'walk'])}
  tokens = ['a/DET', 'person/NOUN', 'walk/VERB', 'forward/ADV']
  word, pos, n = te.text_features(tokens, vecs, max_text_len=5)
  assert n == 6 and word.shape == (7, 3) and pos.shape == (7, 15)
  np.testing.assert_array_equal(word[:, 0], [0, 3, 2, 4, 2, 1, 2])  # person/forward unknown
  tags = [te.POS_ENUMERATOR[i] for i in pos.argmax(1)]
  # 'walk' is an Act_VIP word; unknown words are OTHER whatever their tag.
  assert tags == ['OTHER', 'DET', 'OTHER', 'Act_VIP', 'OTHER', 'OTHER', 'OTHER']
  word, _, n = te.text_features(tokens * 2, vecs, max_text_len=5)
  assert n == 7 and word.shape == (7, 3)  # Cropped to 5 words + sos + eos.
  assert te.pos_one_hot('left', 'ADV')[te.POS_ENUMERATOR.index('Loc_VIP')] == 1
  assert te.pos_one_hot('the', 'XYZ')[te.POS_ENUMERATOR.index('OTHER')] == 1
  with pytest.raises(ValueError, match="'word/POS'"):
    te.text_features(['walk'], vecs)
  with pytest.raises(KeyError, match='unk'):
    te.text_features(['a/DET'], {'a': np.zeros(3)})


def test_movement_encoder_frozen_by_default_and_contrastive_training_overfits():
  # Start from random weights in the upstream layout (no init to compile), overfit 8 pairs.
  model, params = tc.load_t2m_evaluator(make_state_dict(seed=4))
  rng = np.random.default_rng(3)
  n = 8
  word = rng.normal(size=(n, 6, WORD)).astype(np.float32)
  pos = np.eye(POS, dtype=np.float32)[rng.integers(0, POS, size=(n, 6))]
  t_lens = rng.integers(2, 7, size=n)
  motion = rng.normal(size=(n, 16, POSE)).astype(np.float32)
  m_lens = rng.integers(4, 17, size=n)
  opt = optax.adam(1e-2)

  def loss_fn(p, shift):
    t, m = model.apply({'params': p}, word, pos, t_lens, motion, m_lens)
    return te.contrastive_loss(t, m, shift, margin=2.0)[0], (t, m)

  @jax.jit
  def step(p, s, key):
    shift = te.negative_shift(key, n, upstream=False)
    (loss, emb), g = jax.value_and_grad(loss_fn, has_aux=True)(p, shift)
    updates, s = opt.update(g, s, p)
    return optax.apply_updates(p, updates), s, loss, emb, g

  state, losses = opt.init(params), []
  for i, key in enumerate(jax.random.split(jax.random.key(1), 200)):
    params, state, loss, (t, m), grads = step(params, state, key)
    losses.append(float(loss))
    if i == 0:  # The frozen movement encoder gets no gradient; the others do.
      assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads['movement_encoder']))
      assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads['text_encoder']))
  dist = np.linalg.norm(np.asarray(t)[:, None] - np.asarray(m)[None], axis=-1)
  assert np.mean(losses[-10:]) < 0.2 * losses[0]
  assert np.all(dist.argmin(axis=1) == np.arange(n))  # Every text finds its own motion.
