"""Guo et al.'s text/motion matching evaluator (CVPR 2022, "Generating Diverse and Natural
3D Human Motions from Text", Sec. 5 and supp.) in Flax, and its public weights' layout.

The evaluator behind HumanML3D's R-precision, FID, diversity and matching score
(`jaxvision.metrics.generation`), as EricGuo5513/text-to-motion `networks/modules.py`:

* MovementConvEncoder: motion features without the 4 foot contacts, (B, T, F - 4) ->
  Conv1d(k 4, s 2, p 1) -> Dropout(0.2) -> LeakyReLU(0.2), twice -> Linear: one
  "movement" per 4 frames (B, T/4, latent).
* MotionEncoderBiGRUCo: Linear -> bidirectional GRU over the first length // 4
  movements (a learned initial state per direction) -> [h_fwd; h_bwd] -> Linear ->
  LayerNorm -> LeakyReLU(0.2) -> Linear: the motion embedding (B, 512).
* TextEncoderBiGRUCo: word vectors (GloVe, 300) + Linear(POS one-hot, 15 -> 300) ->
  Linear -> bidirectional GRU over the sentence length -> the same output head.
  Sentences are 'sos' + up to 20 'word/POS' tokens + 'eos', padded with 'unk'
  (`text_features`, as upstream's dataset and WordVectorizer).

The GRU is PyTorch's: r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(W_iz x + b_iz +
W_hz h + b_hz), n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h.
Padding is skipped as `pack_padded_sequence` does: the forward state stops at step
length - 1 and the backward pass starts there, so no sorting by length is needed.

Training (text_mot_match, `TextMotionMatchTrainer`): the movement encoder is pretrained
as an autoencoder (`movement_autoencoder_loss`, DecompTrainerV3) and frozen; text and
motion encoders minimise Hadsell et al.'s contrastive loss (`contrastive_loss`) on true
pairs and on motions rolled by a random shift, with margin 10, Adam 1e-4, batch 32,
gradient norm clipped to 0.5 per encoder.

`t2m_checkpoint.load_t2m_evaluator` loads the released `finest.tar` weights.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.nn import layers
from jaxvision.nn.layers import boxed

# POS_enumerator and the "very important" word lists of upstream's word_vectorizer.py.
POS_ENUMERATOR = ('VERB', 'NOUN', 'DET', 'ADP', 'NUM', 'AUX', 'PRON', 'ADJ', 'ADV', 'Loc_VIP',
                  'Body_VIP', 'Obj_VIP', 'Act_VIP', 'Desc_VIP', 'OTHER')
VIP_WORDS = {
    'Loc_VIP': ('left', 'right', 'clockwise', 'counterclockwise', 'anticlockwise', 'forward',
                'back', 'backward', 'up', 'down', 'straight', 'curve'),
    'Body_VIP': ('arm', 'chin', 'foot', 'feet', 'face', 'hand', 'mouth', 'leg', 'waist', 'eye',
                 'knee', 'shoulder', 'thigh'),
    'Obj_VIP': ('stair', 'dumbbell', 'chair', 'window', 'floor', 'car', 'ball', 'handrail',
                'baseball', 'basketball'),
    'Act_VIP': ('walk', 'run', 'swing', 'pick', 'bring', 'kick', 'put', 'squat', 'throw', 'hop',
                'dance', 'jump', 'turn', 'stumble', 'dance', 'stop', 'sit', 'lift', 'lower',
                'raise', 'wash', 'stand', 'kneel', 'stroll', 'rub', 'bend', 'balance', 'flap',
                'jog', 'shuffle', 'lean', 'rotate', 'spin', 'spread', 'climb'),
    'Desc_VIP': ('slowly', 'carefully', 'fast', 'careful', 'slow', 'quickly', 'happy', 'angry',
                 'sad', 'happily', 'angrily', 'sadly'),
}
LN_EPS = 1e-5


_xavier = nn.initializers.xavier_normal()  # Upstream's init_weight, zero biases.


def _dense(features, names, name):
  return layers.Dense(features, kernel_axes=names, kernel_init=_xavier, name=name)


# --- Text input ----------------------------------------------------------------------

def pos_one_hot(word: str, pos: str, known: bool = True) -> np.ndarray:
  """(15,) one-hot: a VIP category for listed words, else the POS tag (unknown -> OTHER)."""
  vec = np.zeros(len(POS_ENUMERATOR), np.float32)
  tag = next((k for k, words in VIP_WORDS.items() if word in words), pos) if known else 'OTHER'
  vec[POS_ENUMERATOR.index(tag if tag in POS_ENUMERATOR else 'OTHER')] = 1
  return vec


def text_features(tokens: Sequence[str], word_vectors: Mapping[str, np.ndarray],
                  max_text_len: int = 20) -> tuple[np.ndarray, np.ndarray, int]:
  """(word_embs (max+2, D), pos_onehot (max+2, 15), sent_len) from 'word/POS' tokens.

  As upstream's Text2MotionDatasetV2 + WordVectorizer: crop to max_text_len, wrap in
  'sos/OTHER' ... 'eos/OTHER', pad with 'unk/OTHER'; words missing from `word_vectors`
  use its 'unk' vector and the OTHER tag.
  """
  if 'unk' not in word_vectors:
    raise KeyError("word_vectors needs an 'unk' entry for unknown words")
  tokens = ['sos/OTHER'] + list(tokens)[:max_text_len] + ['eos/OTHER']
  sent_len = len(tokens)
  tokens += ['unk/OTHER'] * (max_text_len + 2 - sent_len)
  embs, pos = [], []
  for token in tokens:
    if token.count('/') != 1:
      raise ValueError(f"a token is 'word/POS', got {token!r}")
    word, tag = token.split('/')
    known = word in word_vectors
    embs.append(np.asarray(word_vectors[word if known else 'unk'], np.float32))
    pos.append(pos_one_hot(word, tag, known))
  return np.stack(embs), np.stack(pos), sent_len


# --- Modules --------------------------------------------------------------------------

def _gru_direction(gi, h0, w_h, b_h, mask, reverse):
  """Runs one GRU direction. gi: (B, T, 3H) input projections; mask: (B, T)."""
  hidden = h0.shape[-1]

  def step(h, inputs):
    gi_t, m_t = inputs
    gh = h @ w_h + b_h
    r = jax.nn.sigmoid(gi_t[:, :hidden] + gh[:, :hidden])
    z = jax.nn.sigmoid(gi_t[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
    n = jnp.tanh(gi_t[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
    h = jnp.where(m_t[:, None], (1 - z) * n + z * h, h)
    return h, h

  last, seq = jax.lax.scan(step, h0, (jnp.swapaxes(gi, 0, 1), jnp.swapaxes(mask, 0, 1)),
                           reverse=reverse)
  return last, jnp.swapaxes(seq, 0, 1)


class BiGRU(nn.Module):
  """One-layer bidirectional GRU over the first `lengths` steps, learned initial state.

  `__call__(x (B, T, D), lengths (B,)) -> (outputs (B, T, 2H), last (B, 2H))`; `last`
  is [forward state after step length-1, backward state after step 0].
  """
  hidden_size: int

  @nn.compact
  def __call__(self, x, lengths):
    h = self.hidden_size
    bound = 1 / np.sqrt(h)  # PyTorch's GRU init: U(-1/sqrt(H), 1/sqrt(H)).
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(  # pylint: disable=g-long-lambda
        key, shape, dtype, -bound, bound)
    mask = jnp.arange(x.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
    init_state = self.param('hidden', boxed(nn.initializers.normal(1.0), None, None, 'mlp'),
                            (2, 1, h), jnp.float32)
    lasts, seqs = [], []
    for d, name in enumerate(('forward', 'backward')):
      w_i = self.param(f'{name}_input_kernel', boxed(uniform, 'embed', 'mlp'),
                       (x.shape[-1], 3 * h), jnp.float32)
      w_h = self.param(f'{name}_hidden_kernel', boxed(uniform, None, 'mlp'), (h, 3 * h),
                       jnp.float32)
      b_i = self.param(f'{name}_input_bias', boxed(uniform, 'mlp'), (3 * h,), jnp.float32)
      b_h = self.param(f'{name}_hidden_bias', boxed(uniform, 'mlp'), (3 * h,), jnp.float32)
      h0 = jnp.broadcast_to(init_state[d], (x.shape[0], h))
      last, seq = _gru_direction(x @ w_i + b_i, h0, w_h, b_h, mask, reverse=d == 1)
      lasts.append(last)
      seqs.append(seq)
    return jnp.concatenate(seqs, -1), jnp.concatenate(lasts, -1)


class OutputNet(nn.Module):
  """Linear -> LayerNorm -> LeakyReLU(0.2) -> Linear (upstream's `output_net`)."""
  hidden_size: int
  output_size: int

  @nn.compact
  def __call__(self, x):
    x = _dense(self.hidden_size, ('embed', 'mlp'), 'dense_0')(x)
    x = layers.layer_norm('layer_norm', LN_EPS)(x)
    return _dense(self.output_size, ('mlp', 'embed'), 'dense_1')(nn.leaky_relu(x, 0.2))


class MovementConvEncoder(nn.Module):
  """(B, T, F) -> (B, T // 4, output_size): two strided convs, then a Linear."""
  hidden_size: int = 512
  output_size: int = 512
  dropout: float = 0.2

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    for i, features in enumerate((self.hidden_size, self.output_size)):
      x = nn.Conv(features, (4,), strides=(2,), padding=((1, 1),), name=f'conv_{i}',
                  kernel_init=boxed(_xavier, None, 'embed', 'mlp'),
                  bias_init=boxed(nn.initializers.zeros, 'mlp'))(x)
      x = nn.leaky_relu(nn.Dropout(self.dropout)(x, deterministic=not train), 0.2)
    return _dense(self.output_size, ('embed', 'mlp'), 'out_net')(x)


class ConvTranspose1d(nn.Module):
  """PyTorch's ConvTranspose1d: (B, T, C) -> (B, (T - 1) stride - 2 padding + k, features).

  kernel[k, c, o] is PyTorch's weight[c, o, k]. Computed as a convolution of the input
  dilated by `stride` and padded by k - 1 - padding with the flipped kernel.
  """
  features: int
  kernel_size: int = 4
  stride: int = 2
  padding: int = 1

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param('kernel', boxed(_xavier, None, 'embed', 'mlp'),
                        (k, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', boxed(nn.initializers.zeros, 'mlp'), (self.features,), jnp.float32)
    pad = k - 1 - self.padding
    y = jax.lax.conv_general_dilated(x, kernel[::-1], (1,), [(pad, pad)],
                                     lhs_dilation=(self.stride,),
                                     dimension_numbers=('NWC', 'WIO', 'NWC'))
    return y + bias


class MovementConvDecoder(nn.Module):
  """(B, T', latent) movements -> (B, 4 T', output_size) motion features (autoencoder)."""
  hidden_size: int = 512
  output_size: int = 263

  @nn.compact
  def __call__(self, x):
    for i, features in enumerate((self.hidden_size, self.output_size)):
      x = nn.leaky_relu(ConvTranspose1d(features, name=f'deconv_{i}')(x), 0.2)
    return _dense(self.output_size, ('embed', 'mlp'), 'out_net')(x)


class MotionEncoderBiGRUCo(nn.Module):
  """Movements (B, T', latent) and lengths in movements -> (B, output_size)."""
  hidden_size: int = 1024
  output_size: int = 512

  @nn.compact
  def __call__(self, movements, lengths):
    x = _dense(self.hidden_size, ('embed', 'mlp'), 'input_emb')(movements)
    _, last = BiGRU(self.hidden_size, name='gru')(x, lengths)
    return OutputNet(self.hidden_size, self.output_size, name='output_net')(last)


class TextEncoderBiGRUCo(nn.Module):
  """Word vectors (B, L, word), POS one-hots (B, L, 15), lengths -> (B, output_size)."""
  hidden_size: int = 512
  output_size: int = 512

  @nn.compact
  def __call__(self, word_embs, pos_onehot, lengths):
    pos = _dense(word_embs.shape[-1], ('embed', 'mlp'), 'pos_emb')(pos_onehot)
    x = _dense(self.hidden_size, ('embed', 'mlp'), 'input_emb')(word_embs + pos)
    _, last = BiGRU(self.hidden_size, name='gru')(x, lengths)
    return OutputNet(self.hidden_size, self.output_size, name='output_net')(last)


def _check_lengths(lengths, limit: int, what: str) -> None:
  if isinstance(lengths, jax.core.Tracer):
    return  # Values are unknown under jit; upstream would fail on 0 as well.
  lengths = np.asarray(lengths)
  if lengths.ndim != 1 or np.any(lengths < 1) or np.any(lengths > limit):
    raise ValueError(f'{what} must be a vector in [1, {limit}], got {lengths.tolist()}')


class T2MEvaluator(nn.Module):
  """The three encoders; `encode_text`, `encode_motion`, `__call__` gives both.

  Defaults are the HumanML3D/KIT evaluator (EvaluatorModelWrapper): movement hidden
  512, latent 512, text hidden 512, motion hidden 1024, co-embedding 512, unit length 4,
  word vectors of 300. The last `num_contacts` motion features (foot contacts) are
  dropped before the movement encoder; `train_movement=False` stops its gradient and
  its dropout, as the matching stage trains with a frozen, pretrained movement encoder.
  """
  movement_hidden: int = 512
  movement_latent: int = 512
  text_hidden: int = 512
  motion_hidden: int = 1024
  coemb_size: int = 512
  unit_length: int = 4
  num_contacts: int = 4
  train_movement: bool = False

  def setup(self):
    self.movement_encoder = MovementConvEncoder(self.movement_hidden, self.movement_latent)
    self.motion_encoder = MotionEncoderBiGRUCo(self.motion_hidden, self.coemb_size)
    self.text_encoder = TextEncoderBiGRUCo(self.text_hidden, self.coemb_size)

  def movements(self, motion, *, train: bool = False):
    """(B, T, F) motion features -> (B, T // unit_length, latent) movements."""
    if motion.ndim != 3 or motion.shape[-1] <= self.num_contacts:
      raise ValueError(f'motion must be (batch, frames, features > {self.num_contacts}), '
                       f'got {motion.shape}')
    # Upstream keeps the movement encoder in eval mode (no dropout) while matching.
    out = self.movement_encoder(motion[..., :motion.shape[-1] - self.num_contacts],
                                train=train and self.train_movement)
    return out if self.train_movement else jax.lax.stop_gradient(out)

  def encode_motion(self, motion, lengths, *, train: bool = False):
    """(B, T, F) motion features and frame lengths (B,) -> (B, coemb_size)."""
    movements = self.movements(motion, train=train)
    _check_lengths(np.asarray(lengths) // self.unit_length
                   if not isinstance(lengths, jax.core.Tracer) else lengths,
                   movements.shape[1], f'motion lengths // {self.unit_length}')
    return self.motion_encoder(movements, jnp.asarray(lengths) // self.unit_length)

  def encode_text(self, word_embs, pos_onehot, lengths):
    """Word vectors (B, L, D), POS one-hots (B, L, P), sentence lengths -> (B, coemb)."""
    if word_embs.ndim != 3 or pos_onehot.shape[:2] != word_embs.shape[:2]:
      raise ValueError(f'word_embs (B, L, D) and pos_onehot (B, L, P) must agree, got '
                       f'{word_embs.shape} and {pos_onehot.shape}')
    _check_lengths(lengths, word_embs.shape[1], 'sentence lengths')
    return self.text_encoder(word_embs, pos_onehot, lengths)

  def __call__(self, word_embs, pos_onehot, text_lengths, motion, motion_lengths, *,
               train: bool = False):
    return (self.encode_text(word_embs, pos_onehot, text_lengths),
            self.encode_motion(motion, motion_lengths, train=train))


# --- Training objectives -------------------------------------------------------------

def pairwise_distance(a, b, eps: float = 1e-6):
  """torch.nn.functional.pairwise_distance: ||a - b + eps||_2 over the last axis."""
  return jnp.sqrt(jnp.sum(jnp.square(a - b + eps), axis=-1))


def negative_shift(rng, batch_size: int, upstream: bool = True):
  """The roll that pairs each text with another motion.

  Upstream draws np.random.randint(0, batch_size - 1), i.e. 0..B-2, so a shift of 0
  (negatives = positives) happens with probability 1/(B-1); `upstream=False` draws
  1..B-1, always a different motion.
  """
  if batch_size < 2:
    raise ValueError(f'negative pairs need a batch of at least 2, got {batch_size}')
  low, high = (0, batch_size - 1) if upstream else (1, batch_size)
  return jax.random.randint(rng, (), low, high)


def contrastive_loss(text_emb, motion_emb, shift, margin: float = 10.0):
  """Hadsell et al. (2006) on true pairs and on motions rolled by `shift`.

  loss = mean d(t_i, m_i)^2 + mean max(margin - d(t_i, m_{(i+shift) % B}), 0)^2, with
  torch's pairwise_distance d (eps 1e-6). Returns (loss, {'loss_pos', 'loss_neg'}).
  """
  if text_emb.shape != motion_emb.shape or text_emb.ndim != 2:
    raise ValueError(f'embeddings must be (batch, dim) of one shape, got {text_emb.shape} '
                     f'and {motion_emb.shape}')
  pos = jnp.mean(jnp.square(pairwise_distance(text_emb, motion_emb)))
  mismatched = jnp.roll(motion_emb, -shift, axis=0)  # Row i holds motion (i + shift) % B.
  neg = jnp.mean(jnp.square(jnp.maximum(margin - pairwise_distance(text_emb, mismatched), 0)))
  return pos + neg, {'loss_pos': pos, 'loss_neg': neg}


def movement_autoencoder_loss(motion, reconstruction, latents, lambda_sparsity: float = 1e-3,
                              lambda_smooth: float = 1e-3, mask: Optional[Any] = None):
  """DecompTrainerV3: L1(recon, motion) + l_sp mean|latents| + l_sm L1(latents[1:], [:-1]).

  Upstream averages over every element (no padding mask: it trains on fixed windows);
  `mask` (B, T) optionally restricts the reconstruction term to valid frames.
  """
  err = jnp.abs(reconstruction - motion)
  if mask is None:
    rec = jnp.mean(err)
  else:
    m = jnp.asarray(mask, err.dtype)[..., None]
    rec = jnp.sum(err * m) / jnp.maximum(jnp.sum(m) * err.shape[-1], 1)
  sparsity = jnp.mean(jnp.abs(latents))
  smooth = jnp.mean(jnp.abs(latents[:, 1:] - latents[:, :-1]))
  loss = rec + lambda_sparsity * sparsity + lambda_smooth * smooth
  return loss, {'loss_rec': rec, 'loss_sparsity': sparsity, 'loss_smooth': smooth}
