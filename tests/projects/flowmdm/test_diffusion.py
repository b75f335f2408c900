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
