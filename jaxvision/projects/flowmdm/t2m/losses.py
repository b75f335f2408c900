"""The T2M evaluator's training loss (Guo et al. 2022, Sec. 4; upstream's
DecompTrainerV3 and TextMotionMatchTrainer in one loop): the movement autoencoder's L1
reconstruction + sparsity + smoothness, plus the contrastive matching loss (margin) of
the text and motion embeddings on true and shifted pairs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.nn import t2m_evaluator as te


def loss_fn(params, batch, rng, *, model, config):
  r_drop, r_shift = jax.random.split(rng)
  text_emb, motion_emb, latents, recon = model.apply(
      {'params': params}, batch['word_embs'], batch['pos_onehot'], batch['text_lengths'],
      batch['motion'], batch['motion_lengths'], train=True, rngs={'dropout': r_drop})
  mask = jnp.arange(batch['motion'].shape[1])[None] < batch['motion_lengths'][:, None]
  t = recon.shape[1]
  ae, ae_parts = te.movement_autoencoder_loss(
      batch['motion'][:, :t], recon, latents, config.loss.lambda_sparsity,
      config.loss.lambda_smooth, mask=mask[:, :t])
  shift = te.negative_shift(r_shift, batch['motion'].shape[0], config.loss.upstream_shift)
  match, parts = te.contrastive_loss(text_emb, motion_emb, shift, config.loss.margin)
  metrics = {f'ae_{k}': v for k, v in ae_parts.items()}
  metrics.update(parts, loss_autoencoder=ae, loss_matching=match)
  return ae + match, metrics
