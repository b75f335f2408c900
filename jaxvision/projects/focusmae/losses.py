"""FocusMAE pre-training losses: normalised-pixel reconstruction and AdaMAE's sampling loss.

Basu et al., CVPR 2024, Sec. 3 (upstream `engine_for_pretraining.py::
train_one_epoch_focusmae`), following VideoMAE (Tong et al. 2022, Sec. 3.3) and AdaMAE
(Bandara et al. 2023, Eq. 4):

* target: the clip in [0, 1] cut into tubes, laid out `b (t h w) (p0 p1 p2) c`, each
  tube normalised per channel, `(v - mean) / (std_unbiased + 1e-6)`, then flattened to
  `(p0 p1 p2 c)` = 1536 values (channel fastest);
* l_r: per-token MSE (mean over the 1536 values) on the masked tokens, averaged over
  tokens and batch;
* l_s (AdaMAE's REINFORCE term): `-mean_masked(log p[masked] * stopgrad(l_r_token))`
  per sample, where p is the softmax of the token-sampling logits; total
  `l_r + weight * l_s` with weight 1e-4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.projects.focusmae import model as model_lib


def patchify(video: jax.Array, tubelet: int = 2, patch: int = 16) -> jax.Array:
  """(B, T, H, W, C) -> (B, N, tubelet*patch*patch, C), tokens (t, h, w), pixels (p0 p1 p2)."""
  b, t, h, w, c = video.shape
  gt, gh, gw = model_lib.token_grid(t, h, w, tubelet, patch)
  x = video.reshape(b, gt, tubelet, gh, patch, gw, patch, c)
  x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
  return x.reshape(b, gt * gh * gw, tubelet * patch * patch, c)


def normalized_targets(video: jax.Array, tubelet: int = 2, patch: int = 16,
                       eps: float = 1e-6) -> jax.Array:
  """(B, N, tubelet*patch*patch*C) per-tube normalised pixels (VideoMAE normlize_target)."""
  x = patchify(video.astype(jnp.float32), tubelet, patch)
  mean = x.mean(axis=2, keepdims=True)
  std = jnp.sqrt(x.var(axis=2, keepdims=True, ddof=1))
  x = (x - mean) / (std + eps)
  return x.reshape(x.shape[0], x.shape[1], -1)


def reconstruction_loss(pred: jax.Array, video: jax.Array, masked: jax.Array, *,
                        tubelet: int = 2, patch: int = 16,
                        normalize: bool = True) -> tuple[jax.Array, jax.Array]:
  """(mean l_r, per-token l_r (B, N_masked)) for predictions of the `masked` tokens.

  video: the clip in [0, 1]; masked: (B, N_masked) indices the predictions belong to.
  """
  if normalize:
    target = normalized_targets(video, tubelet, patch)
  else:
    target = patchify(video.astype(jnp.float32), tubelet, patch)
    target = target.reshape(target.shape[0], target.shape[1], -1)
  target = model_lib.gather_tokens(target, masked)
  per_token = jnp.mean((pred.astype(jnp.float32) - target) ** 2, axis=-1)
  return per_token.mean(), per_token


def sampling_loss(logits: jax.Array, masked: jax.Array, per_token_loss: jax.Array) -> jax.Array:
  """AdaMAE's l_s: -mean_b mean_masked(log softmax(logits)[masked] * stopgrad(l_r))."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  log_p_masked = jnp.take_along_axis(log_p, masked, axis=-1)
  return -jnp.mean(log_p_masked * jax.lax.stop_gradient(per_token_loss))
