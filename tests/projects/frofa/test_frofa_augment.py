"""FroFA maps and policies: identity of t_{x->f} ∘ t_{f->x}, per-channel draws, policies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxvision.projects.frofa import augment
from jaxvision.projects.frofa import mapping


def _features(shape=(4, 4, 6), seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * 3.0 + 1.0, jnp.float32)


def _batch(policy, key, f, y=None):
  """augment_batch in one compiled call (eagerly, every primitive compiles on its own)."""
  return jax.jit(augment.augment_batch, static_argnums=0)(policy, key, f, y)


def _stages(stages, key, f):
  """apply_stage of each stage to the same map f, in one compiled call."""
  return jax.jit(lambda k, f: [augment.apply_stage(s, k, f) for s in stages])(key, f)


@pytest.mark.parametrize('variant', mapping.VARIANTS)
@pytest.mark.parametrize('scale', [1.0, 255.0])
def test_maps_are_inverse_and_hit_the_image_range(variant, scale):
  f = _features().at[..., 2].set(0.7)       # a constant channel
  stats = mapping.feature_stats(f, variant)
  x = mapping.f_to_x(f, stats, scale)
  np.testing.assert_allclose(mapping.x_to_f(x, stats, scale), f, rtol=1e-5, atol=1e-5)
  assert float(x.min()) >= 0 and float(x.max()) <= scale
  if mapping.per_channel_stats(variant):
    np.testing.assert_allclose(x.min(axis=(0, 1)), 0.0, atol=1e-6)
    live = np.array([0, 1, 3, 4, 5])
    np.testing.assert_allclose(np.asarray(x.max(axis=(0, 1)))[live], scale, rtol=1e-6)
  else:
    assert float(x.min()) == 0.0 and float(x.max()) == pytest.approx(scale)
    # one global affine map: the channels keep their relative offsets
    np.testing.assert_allclose(x[..., 2], (0.7 - f.min()) / (f.max() - f.min()) * scale,
                               rtol=1e-5)


def test_frofa_with_identity_augmentation_is_identity_and_checks_shapes():
  f = _features()
  for variant in mapping.VARIANTS:
    np.testing.assert_allclose(mapping.frofa(f, lambda x: x, variant=variant), f, atol=1e-5)
  with pytest.raises(ValueError, match=r'\(H, W, C\)'):
    mapping.feature_stats(jnp.zeros((16, 8)), 'c')
  with pytest.raises(ValueError, match='unknown FroFA variant'):
    mapping.feature_stats(f, 'x')


def _factor_probe(n, c, seed=0):
  """Maps whose every channel spans [0, 1] with a 0.5 pixel: brightness factors show there."""
  rng = np.random.default_rng(seed)
  f = rng.uniform(0.1, 0.9, (n, 4, 4, c)).astype(np.float32)
  f[:, 0, 0], f[:, 0, 1], f[:, 0, 2] = 0.0, 1.0, 0.5
  return jnp.asarray(f)


@pytest.mark.parametrize('variant', ['c', 'c2'])
def test_per_channel_variants_draw_independently_per_channel(variant):
  n, c = 64, 32
  f = _factor_probe(n, c)
  policy = augment.make_policy({'policy': 'sequence', 'stages': [
      {'op': 'brightness', 'variant': variant, 'magnitude': 0.5}]})
  out, _ = _batch(policy, jax.random.key(7), f)
  factors = np.asarray(out[:, 0, 2, :]) / 0.5          # (n, c): the drawn factor
  # Each draw is U[0.5, 1.5] ...
  assert scipy.stats.kstest(factors.ravel(), scipy.stats.uniform(0.5, 1.0).cdf).pvalue > 0.01
  # ... channels are uncorrelated (|r| of independent samples is ~ 1/sqrt(n)) ...
  corr = np.corrcoef(factors.T)[np.triu_indices(c, 1)]
  assert np.max(np.abs(corr)) < 4.5 / np.sqrt(n) and abs(np.mean(corr)) < 0.05
  # ... and examples differ too.
  assert np.std(factors[:, 0]) > 0.2


def test_default_variant_draws_one_parameter_per_map():
  f = _factor_probe(16, 8)
  policy = augment.make_policy({'policy': 'sequence', 'stages': [
      {'op': 'brightness', 'variant': 'default', 'magnitude': 0.5}]})
  out, _ = _batch(policy, jax.random.key(0), f)
  factors = np.asarray(out[:, 0, 2, :]) / 0.5
  np.testing.assert_allclose(factors, factors[:, :1].repeat(8, 1), atol=1e-5)
  assert np.std(factors[:, 0]) > 0.1


def test_c2_uses_per_channel_minmax():
  """Brightness c²: every channel is scaled about its own minimum."""
  f = jnp.stack([jnp.linspace(-2.0, 3.0, 16).reshape(4, 4),
                 jnp.linspace(10.0, 11.0, 16).reshape(4, 4)], -1)
  same, inv_c2, inv = _stages([
      augment.make_stage({'op': 'brightness', 'variant': 'c2', 'magnitude': 0.0}),
      augment.make_stage({'op': 'invert', 'variant': 'c2'}),
      augment.make_stage({'op': 'invert', 'variant': 'default'})], jax.random.key(0), f)
  np.testing.assert_allclose(same, f, atol=1e-5)
  for i in range(2):  # per-channel invert: fmin + fmax - f
    np.testing.assert_allclose(inv_c2[..., i], f[..., i].min() + f[..., i].max() - f[..., i],
                               atol=1e-5)
  np.testing.assert_allclose(inv, float(f.min() + f.max()) - f, atol=1e-5)


def test_apply_probability_per_channel():
  f = _features((4, 4, 400))
  stage = augment.make_stage({'op': 'invert', 'variant': 'c', 'prob': 0.3})
  out = np.asarray(_stages([stage], jax.random.key(1), f)[0])
  changed = np.any(np.abs(out - np.asarray(f)) > 1e-4, axis=(0, 1))
  assert 0.2 < changed.mean() < 0.4


def test_sequence_composes_stages():
  f = _features()
  policy = augment.make_policy({'policy': 'sequence', 'stages': [
      {'op': 'invert', 'variant': 'c2'}, {'op': 'invert', 'variant': 'c2'}]})
  bc2_pc = augment.make_policy({'policy': 'sequence', 'stages': [
      {'op': 'brightness', 'variant': 'c2'}, {'op': 'posterize', 'variant': 'c'}]})
  twice, out = jax.jit(lambda k, f: [augment.augment_batch(p, k, f)[0] for p in (
      policy, bc2_pc)])(jax.random.key(0), f[None])
  np.testing.assert_allclose(twice[0], f, atol=1e-5)      # invert twice
  assert out.shape == (1, 4, 4, 6) and not np.allclose(out, f[None])


def test_randaugment_and_trivialaugment_choose_among_stages():
  f = _features((4, 4, 3))
  batch = jnp.tile(f[None], (32, 1, 1, 1))
  inverted = float(f.min() + f.max()) - f
  policies = [augment.make_policy({'policy': 'randaugment', 'num_ops': num_ops,
                                    'stages': [{'op': 'invert', 'variant': 'default'}]})
              for num_ops in (2, 1)]
  policies.append(augment.make_policy({'policy': 'trivialaugment', 'stages': [
      {'op': 'invert', 'variant': 'default'},
      {'op': 'brightness', 'variant': 'c2', 'magnitude': 0.0}]}))
  *ra, out = jax.jit(lambda k, b: [augment.augment_batch(p, k, b)[0] for p in policies])(
      jax.random.key(0), batch)
  # randaugment of {invert}: num_ops=2 is the identity, num_ops=1 inverts.
  for got, expect in zip(ra, (f, inverted)):
    np.testing.assert_allclose(got, jnp.broadcast_to(expect, got.shape), atol=1e-5)
  # trivialaugment of {invert, brightness at magnitude 0}: each example is f or its inverse.
  is_f = np.all(np.abs(np.asarray(out) - np.asarray(f)) < 1e-4, axis=(1, 2, 3))
  is_inv = np.all(np.abs(np.asarray(out) - np.asarray(inverted)) < 1e-4, axis=(1, 2, 3))
  assert np.all(is_f | is_inv) and is_f.any() and is_inv.any()


def test_trivialaugment_scales_the_magnitude():
  f = _factor_probe(256, 1)
  policy = augment.make_policy({'policy': 'trivialaugment', 'stages': [
      {'op': 'brightness', 'variant': 'default', 'magnitude': 0.8}]})
  out, _ = _batch(policy, jax.random.key(0), f)
  factors = np.asarray(out[:, 0, 2, 0]) / 0.5
  # factor = 1 + u * 0.8 * (2r - 1): within [0.2, 1.8], concentrated around 1.
  assert factors.min() >= 0.2 - 1e-5 and factors.max() <= 1.8 + 1e-5
  assert np.mean(np.abs(factors - 1) < 0.2) > 0.4


def test_every_op_jits_vmaps_and_keeps_the_feature_range():
  """Every op through the policy machinery, vmapped over a batch, in ONE compiled call of
  two sequences: one parameter per map ('default') and one per channel ('c' / 'c2'
  alternating), patch dropout last.  Shapes compose and values stay within the map's
  [min, max] (each op maps [0, s] to [0, s])."""
  ops = [o for o in sorted(augment.OPS) if o != 'patch_dropout']
  sequences = ([{'op': o, 'variant': 'default'} for o in ops],
               [{'op': o, 'variant': ('c', 'c2')[i % 2]} for i, o in enumerate(ops)])
  policies = [augment.make_policy({'policy': 'sequence', 'stages': stages + [
      {'op': 'patch_dropout', 'variant': stages[0]['variant']}]}) for stages in sequences]
  f = _features((3, 4, 4, 5))
  run = jax.jit(lambda k, f: [augment.augment_batch(p, k, f)[0] for p in policies])
  lo, hi = float(f.min()), float(f.max())
  for out in run(jax.random.key(2), f):
    assert out.shape == (3, 8, 5) and bool(jnp.all(jnp.isfinite(out)))
    assert lo - 1e-4 <= float(out.min()) and float(out.max()) <= hi + 1e-4


def test_mixup_through_the_policy_and_bad_configs():
  policy = augment.make_policy({'policy': 'none', 'mixup_alpha': 0.5})
  f = _features((4, 2, 2, 3))
  y = jnp.eye(4)
  out, ym = _batch(policy, jax.random.key(0), f, y)
  np.testing.assert_allclose(ym.sum(-1), 1.0, rtol=1e-6)
  assert not np.allclose(out, f)
  with pytest.raises(ValueError, match='needs the'):
    _batch(policy, jax.random.key(0), f)
  bad = [({'policy': 'sequence', 'stages': [{'op': 'brightnes'}]}, 'unknown FroFA op'),
         ({'policy': 'sequence', 'stages': [{'op': 'brightness', 'variant': 'e3'}]}, 'variant'),
         ({'policy': 'sequence', 'stages': [{'op': 'patch_dropout'}, {'op': 'invert'}]},
          'last stage'),
         ({'policy': 'randaugment', 'stages': [{'op': 'patch_dropout'}]}, 'last stage'),
         ({'policy': 'sequence'}, 'at least one stage'),
         ({'policy': 'shuffle', 'stages': [{'op': 'invert'}]}, 'unknown FroFA policy'),
         ({'policy': 'none', 'scale': 10}, 'scale'),
         ({'policy': 'none', 'mixup': 1}, 'unknown FroFA augment key'),
         ({'policy': 'sequence', 'stages': [{'op': 'invert', 'prob': 2}]}, 'prob')]
  for cfg, match in bad:
    with pytest.raises(ValueError, match=match):
      augment.make_policy(cfg)


@pytest.mark.parametrize('variant', ['e', 'e2'])
def test_element_wise_variants_draw_one_parameter_per_element(variant):
  f = _factor_probe(8, 16)
  policy = augment.make_policy({'policy': 'sequence', 'stages': [
      {'op': 'brightness', 'variant': variant, 'magnitude': 0.5}]})
  out, _ = _batch(policy, jax.random.key(3), f)
  x = np.asarray(f)
  keep = (x > 0.05) & (x <= 0.6)      # no clipping at factor <= 1.5, a usable ratio
  if variant == 'e2':                 # per-channel min/max: ratios of the mapped values
    lo, hi = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
    xm, om = (x - lo) / (hi - lo), (np.asarray(out) - lo) / (hi - lo)
    keep = (xm > 0.05) & (xm <= 0.6)
    ratio = om[keep] / xm[keep]
  else:
    ratio = np.asarray(out)[keep] / x[keep]
  assert scipy.stats.kstest(ratio, scipy.stats.uniform(0.5, 1.0).cdf).pvalue > 0.01
  # within one map, elements of one channel (and one position's channels) differ
  r = np.where(keep, np.asarray(out) / np.where(x > 0, x, 1), np.nan)
  assert np.nanstd(r[0, :, :, 3]) > 0.15 and np.nanstd(r[0, 2, 3, :]) > 0.15
  with pytest.raises(ValueError, match='element-wise FroFA .* needs a pointwise op'):
    augment.make_stage({'op': 'rotate', 'variant': variant})


def test_fixed_magnitude_sampling_is_big_vision_level_values():
  """'fixed': brightness 1 + m, posterize 8 - m bits, rotate ±m, solarize 256 m."""
  from jaxvision.data.augment import pointwise as pw  # pylint: disable=g-import-not-at-top
  from jaxvision.data.augment import spatial as sp  # pylint: disable=g-import-not-at-top
  f = _factor_probe(6, 4)
  x = np.asarray(f)      # global min 0 / max 1: t_{f->x} is the identity on these maps
  out = {}
  for op, m in [('brightness', 0.5), ('posterize', 4), ('rotate', 30.0), ('solarize', 1.0)]:
    policy = augment.make_policy({'policy': 'sequence', 'magnitude_sampling': 'fixed',
                                  'stages': [{'op': op, 'variant': 'default', 'magnitude': m}]})
    out[op] = np.asarray(_batch(policy, jax.random.key(5), f)[0])
  np.testing.assert_allclose(out['brightness'], np.minimum(1.5 * x, 1.0), atol=1e-5)
  poster = np.asarray(jax.vmap(lambda v: pw.posterize(v, 4))(f))
  np.testing.assert_allclose(out['posterize'], poster, atol=1e-5)
  rot = {s: np.asarray(jax.vmap(lambda v, s=s: sp.rotate(v, s * 30.0, fill=0.5))(f))
         for s in (1, -1)}
  signs = [next(s for s in (1, -1) if np.allclose(out['rotate'][i], rot[s][i], atol=1e-5))
           for i in range(6)]
  assert set(signs) == {1, -1}                 # a random sign per example
  np.testing.assert_allclose(out['solarize'], x, atol=1e-6)   # big_vision: level 10 = no-op
  with pytest.raises(ValueError, match='magnitude_sampling'):
    augment.make_policy({'policy': 'none', 'magnitude_sampling': 'gaussian'})
