"""FlowMDM's sampling (sampling.py) and diffusion path: the BPE schedule, the composition sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.diffusion import gaussian as dl
from jaxvision.projects.flowmdm import sampling


def test_bpe_schedule_steps_from_absolute_to_relative():
  t = jnp.arange(1000)
  w = np.asarray(sampling.bpe_weight(t, 1000, 125))
  assert np.all(w[t > 875] == 0) and np.all(w[t <= 875] == 1)
  assert np.all(np.asarray(sampling.bpe_weight(t, 1000, -1)) == 0)
  assert np.all(np.asarray(sampling.bpe_weight(t, 1000, 0)) == 1)
  with pytest.raises(ValueError, match='switch step'):
    sampling.bpe_weight(t, 1000, 2000)


def test_sampler_with_an_oracle_denoiser_returns_the_oracle():
  d = dl.respaced(dl.make_diffusion(1000), 'ddim20')
  target = jnp.asarray(np.random.default_rng(5).normal(size=(1, 7, 3)), jnp.float32)
  seen_w = []

  def oracle(x, t_orig, text_emb, seg, mask, w):
    del x, seg, mask
    seen_w.append(w)
    return jnp.broadcast_to(target, (text_emb.shape[0],) + target.shape[1:])

  ids, mask = sampling.composition_inputs([3, 4])
  sample = sampling.make_sampler(oracle, d, num_original_steps=1000, bpe_switch_step=125,
                                 guidance_scale=2.5)
  out = sample(jax.random.key(0), jnp.ones((1, 7, 3)), jnp.ones((1, 2, 5)), jnp.asarray(ids),
               jnp.asarray(mask))
  np.testing.assert_allclose(out, target, atol=1e-5)
  np.testing.assert_array_equal(ids, [[0, 0, 0, 1, 1, 1, 1]])


def _tiny_denoiser(banded=False):
  from jaxvision.projects.flowmdm import model as model_lib  # pylint: disable=g-import-not-at-top
  m = model_lib.FlowMDMDenoiser(input_dim=3, latent_dim=16, num_layers=1, num_heads=2,
                                head_dim=8, ff_size=32, dropout=0.0, layer_dropout=0.0,
                                rpe_horizon=4, text_dim=5, rotary_dim=8,
                                banded_attention=banded)
  ids, mask = sampling.composition_inputs([6, 5])
  p = m.init(jax.random.key(0), jnp.zeros((1, 11, 3)), jnp.zeros((1,), jnp.int32),
             text_emb=jnp.ones((1, 2, 5)), segment_ids=jnp.asarray(ids),
             mask=jnp.asarray(mask), bpe_w=jnp.zeros(1), train=False)

  def denoise(x, t, te, s, mk, w):
    return m.apply(p, x, t, text_emb=te, segment_ids=s, mask=mk, bpe_w=w, train=False)
  return denoise, ids, mask


def test_guided_passes_batched_equal_two_calls():
  denoise, ids, mask = _tiny_denoiser()
  d = dl.respaced(dl.make_diffusion(1000), 'ddim5')
  args = (jax.random.key(0), jax.random.normal(jax.random.key(1), (1, 11, 3)),
          jax.random.normal(jax.random.key(2), (1, 2, 5)), jnp.asarray(ids), jnp.asarray(mask))
  outs = [jax.jit(sampling.make_sampler(denoise, d, num_original_steps=1000, bpe_switch_step=500,
                                        guidance_scale=2.5, batch_guidance=b))(*args)
          for b in (True, False)]
  np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
  assert float(jnp.max(jnp.abs(outs[0]))) > 0.1


def test_bucketed_sampling_equals_unpadded_on_valid_frames():
  assert [sampling.bucket_length(t) for t in (1, 64, 65, 96, 97, 600, 4800)] == \
      [64, 64, 96, 96, 128, 768, 6144]
  with pytest.raises(ValueError, match='positive'):
    sampling.bucket_length(0)
  denoise, ids, mask = _tiny_denoiser(banded=True)
  d = dl.respaced(dl.make_diffusion(1000), 'ddim5')   # eta 0: no per-step noise
  sample = jax.jit(sampling.make_sampler(denoise, d, num_original_steps=1000,
                                         bpe_switch_step=500, guidance_scale=2.5, method='ddim'))
  args = (jax.random.key(0), jax.random.normal(jax.random.key(1), (1, 11, 3)),
          jax.random.normal(jax.random.key(2), (1, 2, 5)), jnp.asarray(ids), jnp.asarray(mask))
  plain = sample(*args)
  bucketed = sampling.sample_in_bucket(sample, *args, base=8)   # T 11 -> 12
  assert bucketed.shape == plain.shape
  np.testing.assert_allclose(bucketed, plain, atol=1e-5)
