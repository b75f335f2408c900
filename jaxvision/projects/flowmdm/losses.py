"""FlowMDM's training loss (Barquero et al., CVPR 2024, Sec. 3-4): the masked x_0 MSE
of the denoiser at a uniform diffusion step, with the BPE stage (absolute vs relative
positional encoding) drawn per sample and the texts dropped for classifier-free
guidance; reported separately for the relative and absolute samples."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.diffusion import gaussian as diffusion_lib


def text_input(batch):
  """The batch's text condition: precomputed embeddings or token ids."""
  return batch['text_emb'] if 'text_emb' in batch else batch['text_tokens']


def make_diffusion(config) -> diffusion_lib.Diffusion:
  d = config.diffusion
  return diffusion_lib.make_diffusion(d.steps, d.schedule, d.variance)


def loss_fn(params, batch, rng, *, model, config):
  """Masked x_0 MSE at a uniform t, BPE stage ~ Bernoulli, texts dropped for CFG."""
  diff = make_diffusion(config)
  x0, mask = batch['motion'], batch['mask']
  b = x0.shape[0]
  r_t, r_noise, r_bpe, r_cond, r_drop = jax.random.split(rng, 5)
  t = jax.random.randint(r_t, (b,), 0, diff.num_steps)
  noise = jax.random.normal(r_noise, x0.shape, x0.dtype)
  x_t = diff.q_sample(x0, t, noise)
  w = jax.random.bernoulli(r_bpe, config.diffusion.bpe_training_ratio, (b,)).astype(jnp.float32)
  text = text_input(batch)
  drop = jax.random.bernoulli(r_cond, config.diffusion.cond_mask_prob, text.shape[:2])
  pred = model.apply({'params': params}, x_t, t, text=text, segment_ids=batch['segment_ids'],
                     mask=mask, bpe_w=w, train=True, drop_text=drop, rngs={'dropout': r_drop})
  per_sample = diffusion_lib.masked_mse(x0, pred, mask)
  loss = jnp.mean(per_sample)
  return loss, {'loss_relative': jnp.sum(per_sample * w) / jnp.maximum(jnp.sum(w), 1.0),
                'loss_absolute': jnp.sum(per_sample * (1 - w)) / jnp.maximum(jnp.sum(1 - w), 1.0)}
