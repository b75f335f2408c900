"""Tests of jaxvision.nn.vit and vit_checkpoint against big_vision's layout and numpy.

The expected parameter names are written out here from big_vision's
big_vision/models/vit.py; the reference forward pass is plain numpy.
"""

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
from jax.sharding import AxisType, PartitionSpec as P
import numpy as np
import pytest
import scipy.ndimage

from jaxvision.nn import vit
from jaxvision.nn import vit_checkpoint as vc

# Small model used for numerics: 16x16x3 images, 4x4 patches -> 4x4 grid.
W, DEPTH, HEADS, MLP, PATCH, CLASSES = 32, 2, 4, 64, 4, 10
SMALL = dict(width=W, depth=DEPTH, num_heads=HEADS, mlp_dim=MLP, patch_size=PATCH)


def shapes(tree):
  return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(tree, sep='/').items()}


def abstract_params(model, image_shape):
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(image_shape),
                                                train=False))
  return nn.meta.unbox(variables['params'])


# --- 1. Parameter tree equals big_vision's --------------------------------------------

def ti16_expected(pool):
  d, hd, heads, mlp = 192, 64, 3, 768
  def mha(pre):
    return {**{f'{pre}/{n}/kernel': (d, heads, hd) for n in ('query', 'key', 'value')},
            **{f'{pre}/{n}/bias': (heads, hd) for n in ('query', 'key', 'value')},
            f'{pre}/out/kernel': (heads, hd, d), f'{pre}/out/bias': (d,)}
  def ln(pre):
    return {f'{pre}/scale': (d,), f'{pre}/bias': (d,)}
  def mlp_block(pre):
    return {f'{pre}/Dense_0/kernel': (d, mlp), f'{pre}/Dense_0/bias': (mlp,),
            f'{pre}/Dense_1/kernel': (mlp, d), f'{pre}/Dense_1/bias': (d,)}
  exp = {'embedding/kernel': (16, 16, 3, d), 'embedding/bias': (d,),
         'pos_embedding': (1, 196, d), 'head/kernel': (d, 1000), 'head/bias': (1000,),
         **ln('Transformer/encoder_norm')}
  for i in range(12):
    b = f'Transformer/encoderblock_{i}'
    exp.update({**ln(f'{b}/LayerNorm_0'), **mha(f'{b}/MultiHeadDotProductAttention_0'),
                **ln(f'{b}/LayerNorm_1'), **mlp_block(f'{b}/MlpBlock_0')})
  if pool == 'tok':
    exp['cls'] = (1, 1, d)
  if pool == 'map':
    exp.update({'MAPHead_0/probe': (1, 1, d), **mha('MAPHead_0/MultiHeadDotProductAttention_0'),
                **ln('MAPHead_0/LayerNorm_0'), **mlp_block('MAPHead_0/MlpBlock_0')})
  return exp


@pytest.mark.parametrize('pool', ['map', 'tok', 'gap'])
def test_ti16_param_tree_matches_big_vision(pool):
  model = vit.make_vit('Ti/16', num_classes=1000, pool_type=pool)
  assert shapes(abstract_params(model, (1, 224, 224, 3))) == ti16_expected(pool)


def test_variants():
  assert vit.decode_variant('B/32') == dict(width=768, depth=12, mlp_dim=3072, num_heads=12,
                                            patch_size=(32, 32))
  assert vit.decode_variant('L/16')['depth'] == 24
  assert vit.decode_variant('H/14')['width'] == 1280
  with pytest.raises(ValueError, match='Q'):
    vit.decode_variant('Q/16')


# --- 2. Independent numpy forward pass ------------------------------------------------

def bv_checkpoint(seed=0, *, pool='gap', rep=0, tokens=16, classes=CLASSES):
  """Random params in big_vision's flat layout, key names written out by hand."""
  rng = np.random.default_rng(seed)
  def r(*shape, scale=1.0):
    return scale * rng.standard_normal(shape)
  hd = W // HEADS
  def ln(pre):
    return {f'{pre}/scale': 1 + 0.1 * r(W), f'{pre}/bias': 0.1 * r(W)}
  def mha(pre):
    out = {}
    for n in ('query', 'key', 'value'):
      out[f'{pre}/{n}/kernel'] = r(W, HEADS, hd, scale=W ** -0.5)
      out[f'{pre}/{n}/bias'] = r(HEADS, hd, scale=0.1)
    out[f'{pre}/out/kernel'] = r(HEADS, hd, W, scale=W ** -0.5)
    out[f'{pre}/out/bias'] = r(W, scale=0.1)
    return out
  def mlp(pre):
    return {f'{pre}/Dense_0/kernel': r(W, MLP, scale=W ** -0.5), f'{pre}/Dense_0/bias': r(MLP, scale=0.1),
            f'{pre}/Dense_1/kernel': r(MLP, W, scale=MLP ** -0.5), f'{pre}/Dense_1/bias': r(W, scale=0.1)}
  ck = {'embedding/kernel': r(PATCH, PATCH, 3, W, scale=(3 * PATCH * PATCH) ** -0.5),
        'embedding/bias': r(W, scale=0.1), 'pos_embedding': r(1, tokens, W, scale=0.5)}
  for i in range(DEPTH):
    b = f'Transformer/encoderblock_{i}'
    ck.update({**ln(f'{b}/LayerNorm_0'), **mha(f'{b}/MultiHeadDotProductAttention_0'),
               **ln(f'{b}/LayerNorm_1'), **mlp(f'{b}/MlpBlock_0')})
  ck.update(ln('Transformer/encoder_norm'))
  if pool == 'tok':
    ck['cls'] = r(1, 1, W)
  if pool == 'map':
    ck.update({'MAPHead_0/probe': r(1, 1, W), **mha('MAPHead_0/MultiHeadDotProductAttention_0'),
               **ln('MAPHead_0/LayerNorm_0'), **mlp('MAPHead_0/MlpBlock_0')})
  if rep:
    ck.update({'pre_logits/kernel': r(W, rep, scale=W ** -0.5), 'pre_logits/bias': r(rep, scale=0.1)})
  ck.update({'head/kernel': r(rep or W, classes, scale=0.5), 'head/bias': r(classes, scale=0.1)})
  return {k: v.astype(np.float32) for k, v in ck.items()}


def write_npz(path, flat):
  with open(path, 'wb') as f:
    np.savez(f, **flat)
  return path


def np_layernorm(x, p):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + 1e-6) * p['scale'] + p['bias']


def np_gelu(x):
  return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def np_mha(p, xq, xkv):
  q, k, v = (np.einsum('nld,dhk->nlhk', x, p[f'{n}/kernel']) + p[f'{n}/bias']
             for n, x in (('query', xq), ('key', xkv), ('value', xkv)))
  s = np.einsum('nqhk,nthk->nhqt', q, k) / np.sqrt(q.shape[-1])
  a = np.exp(s - s.max(-1, keepdims=True))
  a /= a.sum(-1, keepdims=True)
  o = np.einsum('nhqt,nthk->nqhk', a, v)
  return np.einsum('nqhk,hkd->nqd', o, p['out/kernel']) + p['out/bias']


def np_mlp(p, x):
  h = np_gelu(x @ p['Dense_0/kernel'] + p['Dense_0/bias'])
  return h @ p['Dense_1/kernel'] + p['Dense_1/bias']


def sub(ck, prefix):
  return {k[len(prefix) + 1:]: v for k, v in ck.items() if k.startswith(prefix + '/')}


def np_vit(ck, image, pool):
  """Returns (logits, encoded) of big_vision's ViT in float64 numpy."""
  ck = {k: v.astype(np.float64) for k, v in ck.items()}
  n, hh, ww, c = image.shape
  h, w = hh // PATCH, ww // PATCH
  patches = image.reshape(n, h, PATCH, w, PATCH, c).transpose(0, 1, 3, 2, 4, 5)
  patches = patches.reshape(n, h * w, PATCH * PATCH * c)
  x = patches @ ck['embedding/kernel'].reshape(-1, W) + ck['embedding/bias']
  x = x + ck['pos_embedding']
  if pool == 'tok':
    x = np.concatenate([np.repeat(ck['cls'], n, axis=0), x], axis=1)
  for i in range(DEPTH):
    b = sub(ck, f'Transformer/encoderblock_{i}')
    x = x + np_mha(sub(b, 'MultiHeadDotProductAttention_0'), *[np_layernorm(x, sub(b, 'LayerNorm_0'))] * 2)
    x = x + np_mlp(sub(b, 'MlpBlock_0'), np_layernorm(x, sub(b, 'LayerNorm_1')))
  x = encoded = np_layernorm(x, sub(ck, 'Transformer/encoder_norm'))
  if pool == 'gap':
    x = x.mean(1)
  elif pool in ('tok', '0'):
    x, encoded = x[:, 0], (x[:, 1:] if pool == 'tok' else x)
  elif pool == 'map':
    m = sub(ck, 'MAPHead_0')
    y = np_mha(sub(m, 'MultiHeadDotProductAttention_0'), np.repeat(m['probe'], n, axis=0), x)
    x = (y + np_mlp(sub(m, 'MlpBlock_0'), np_layernorm(y, sub(m, 'LayerNorm_0'))))[:, 0]
  if 'pre_logits/kernel' in ck:
    x = np.tanh(x @ ck['pre_logits/kernel'] + ck['pre_logits/bias'])
  return x @ ck['head/kernel'] + ck['head/bias'], encoded


def small_model(pool='gap', rep=0, **kw):
  return vit.ViT(**{**SMALL, 'num_classes': CLASSES, 'pool_type': pool, 'rep_size': rep, **kw})


@pytest.fixture(scope='module')
def image():
  return np.random.default_rng(1).standard_normal((2, 16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize('pool,rep', [('gap', 0), ('tok', 0), ('map', 0), ('0', 0),
                                      ('none', 0), ('gap', 16)])
def test_forward_matches_numpy(tmp_path, image, pool, rep):
  ck = bv_checkpoint(pool=pool, rep=rep)
  model = small_model(pool, rep)
  params = vc.load_big_vision_npz(write_npz(tmp_path / 'ck.npz', ck),
                                  abstract_params(model, image.shape))
  logits, out = model.apply({'params': params}, image, train=False)
  want_logits, want_encoded = np_vit(ck, image.astype(np.float64), pool)
  np.testing.assert_allclose(logits, want_logits, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(out['encoded'], want_encoded, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(out['logits'], want_logits, atol=1e-5, rtol=1e-5)
  assert out['pre_logits_2d'].shape == (2, 4, 4, rep or W)


# --- 3. Checkpoint loader -------------------------------------------------------------

def assert_trees_equal(a, b):
  fa, fb = traverse_util.flatten_dict(a, sep='/'), traverse_util.flatten_dict(b, sep='/')
  assert sorted(fa) == sorted(fb)
  for k in fa:
    np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_scanned_and_prefixed_layouts_load_the_same(tmp_path, image):
  ck = bv_checkpoint()
  scanned = {k: v for k, v in ck.items() if not k.startswith('Transformer/encoderblock_')}
  for k in [k for k in ck if k.startswith('Transformer/encoderblock_0/')]:
    rest = k[len('Transformer/encoderblock_0/'):]
    scanned[f'Transformer/encoderblock/{rest}'] = np.stack(
        [ck[f'Transformer/encoderblock_{i}/{rest}'] for i in range(DEPTH)])
  prefixed = {f'params/{k}': v for k, v in scanned.items()}
  init = abstract_params(small_model(), image.shape)
  plain = vc.load_big_vision_npz(write_npz(tmp_path / 'a.npz', ck), init)
  assert_trees_equal(plain, vc.load_big_vision_npz(write_npz(tmp_path / 'b.npz', scanned), init))
  assert_trees_equal(plain, vc.load_big_vision_npz(write_npz(tmp_path / 'c.npz', prefixed), init))
  # Into a scanned tree, the per-layer checkpoint is stacked.
  scanned_init = {k: jax.ShapeDtypeStruct(v.shape, np.float32) for k, v in scanned.items()}
  restored = vc.load_big_vision_npz(tmp_path / 'a.npz', vc.unflatten(scanned_init))
  assert_trees_equal(restored, vc.unflatten(scanned))


def test_posemb_resampled_from_4x4_to_8x8(tmp_path):
  ck = bv_checkpoint()
  model = small_model()
  init = abstract_params(model, (1, 32, 32, 3))  # 8x8 grid.
  params = vc.load_big_vision_npz(write_npz(tmp_path / 'ck.npz', ck), init)
  want = scipy.ndimage.zoom(ck['pos_embedding'][0].reshape(4, 4, W), (2, 2, 1), order=1)
  np.testing.assert_allclose(params['pos_embedding'], want.reshape(1, 64, W), rtol=1e-6)
  # Leading extra tokens are kept when the target has them too.
  pe = np.random.default_rng(0).standard_normal((1, 17, W)).astype(np.float32)
  out = vc.resample_posemb(pe, 65)
  np.testing.assert_array_equal(out[:, :1], pe[:, :1])
  np.testing.assert_allclose(
      out[0, 1:], scipy.ndimage.zoom(pe[0, 1:].reshape(4, 4, W), (2, 2, 1), order=1).reshape(64, W))


def test_pre_linen_layout_with_combined_cls_posemb(tmp_path, image):
  """The original ViT release: global module numbering, posemb inside Transformer."""
  ck = bv_checkpoint(pool='tok')
  old_names = {'LayerNorm_0': 'LayerNorm_0', 'MultiHeadDotProductAttention_0':
               'MultiHeadDotProductAttention_1', 'LayerNorm_1': 'LayerNorm_2',
               'MlpBlock_0': 'MlpBlock_3'}
  old = {}
  for k, v in ck.items():
    parts = k.split('/')
    if parts[1:2] and parts[1].startswith('encoderblock_'):
      parts[2] = old_names[parts[2]]
    old['/'.join(parts)] = v
  cls_pe = np.full((1, 1, W), 0.25, np.float32)
  old['Transformer/posembed_input/pos_embedding'] = np.concatenate(
      [cls_pe, old.pop('pos_embedding')], axis=1)
  params = vc.load_big_vision_npz(write_npz(tmp_path / 'old.npz', old),
                                  abstract_params(small_model('tok'), image.shape))
  want = dict(ck, cls=ck['cls'] + cls_pe)
  assert_trees_equal(params, vc.unflatten(want))


def test_dont_load_keeps_init(tmp_path, image):
  model = small_model(num_classes=5, head_zeroinit=False)
  init = nn.meta.unbox(model.init(jax.random.key(3), image, train=False)['params'])
  ck = bv_checkpoint()  # 10-class head.
  params = vc.load_big_vision_npz(write_npz(tmp_path / 'ck.npz', ck), init,
                                  dont_load=('head/.*',))
  np.testing.assert_array_equal(params['head']['kernel'], init['head']['kernel'])
  np.testing.assert_array_equal(params['head']['bias'], init['head']['bias'])
  np.testing.assert_array_equal(params['embedding']['kernel'], ck['embedding/kernel'])
  with pytest.raises(ValueError, match='head/kernel'):  # Without dont_load: shape error.
    vc.load_big_vision_npz(tmp_path / 'ck.npz', init)


def test_loader_errors_name_the_key(tmp_path, image):
  init = abstract_params(small_model(), image.shape)
  ck = bv_checkpoint()
  key = 'Transformer/encoderblock_1/LayerNorm_0/scale'
  missing = {k: v for k, v in ck.items() if k != key}
  with pytest.raises(ValueError, match=f'missing keys.*{key}'):
    vc.load_big_vision_npz(write_npz(tmp_path / 'm.npz', missing), init)
  key = 'Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel'
  with pytest.raises(ValueError, match=f'shape mismatch for {key}'):
    vc.load_big_vision_npz(write_npz(tmp_path / 's.npz', {**ck, key: np.zeros((W, 3))}), init)
  with pytest.raises(ValueError, match='unexpected keys.*extra/kernel'):
    vc.load_big_vision_npz(write_npz(tmp_path / 'u.npz', {**ck, 'extra/kernel': np.zeros(2)}),
                           init)


def test_save_roundtrip(tmp_path, image):
  model = small_model('map')
  params = model.init(jax.random.key(0), image, train=False)['params']  # Boxed.
  vc.save_big_vision_npz(tmp_path / 'out.npz', params)
  with np.load(tmp_path / 'out.npz') as f:
    assert set(f.files) == set(bv_checkpoint(pool='map'))
  restored = vc.load_big_vision_npz(tmp_path / 'out.npz', nn.meta.unbox(params))
  assert_trees_equal(restored, jax.tree.map(np.asarray, nn.meta.unbox(params)))


def test_attention_equals_flax_attention():
  """Same parameter tree and outputs as flax's MultiHeadDotProductAttention."""
  x = jax.random.normal(jax.random.key(1), (2, 5, W))
  probe = jax.random.normal(jax.random.key(2), (2, 1, W))
  ref = nn.MultiHeadDotProductAttention(HEADS, kernel_init=nn.initializers.xavier_uniform())
  params = ref.init(jax.random.key(0), probe, x)
  ours = vit.mha(HEADS)
  assert shapes(nn.meta.unbox(ours.init(jax.random.key(0), probe, x))) == shapes(params)
  np.testing.assert_allclose(ours.apply(params, probe, x), ref.apply(params, probe, x),
                             atol=1e-6)


# --- 4. Position embeddings, head init, dropout, dtype ---------------------------------

def test_sincos2d_posemb(image):
  h, w, d = 3, 5, 16
  want = np.zeros((h * w, d))
  for y in range(h):
    for x in range(w):
      for k in range(d // 4):
        omega = 10000.0 ** (-k / (d // 4 - 1))
        want[y * w + x, [k, d // 4 + k, d // 2 + k, 3 * d // 4 + k]] = [
            np.sin(x * omega), np.cos(x * omega), np.sin(y * omega), np.cos(y * omega)]
  np.testing.assert_allclose(vit.posemb_sincos_2d(h, w, d)[0], want, atol=1e-6)

  model = small_model(posemb='sincos2d')
  variables = model.init(jax.random.key(0), image, train=False)
  assert 'pos_embedding' not in variables['params']
  _, out = model.apply(variables, image, train=False)
  added = out['with_posemb'] - out['stem'].reshape(2, 16, W)
  np.testing.assert_allclose(added[0], vit.posemb_sincos_2d(4, 4, W)[0], atol=1e-5)


def test_head_zeroinit_gives_zero_logits(image):
  model = small_model('map')
  logits, _ = model.apply(model.init(jax.random.key(0), image, train=False), image, train=False)
  np.testing.assert_array_equal(logits, 0.0)
  model = small_model('map', head_zeroinit=False)
  logits, _ = model.apply(model.init(jax.random.key(0), image, train=False), image, train=False)
  assert np.abs(logits).max() > 1e-3


def test_dropout_only_in_training(image):
  model = small_model(dropout=0.5, head_zeroinit=False)
  variables = model.init(jax.random.key(0), image, train=False)
  run = lambda train, seed: model.apply(variables, image, train=train,
                                        rngs={'dropout': jax.random.key(seed)})[0]
  np.testing.assert_array_equal(run(False, 1), run(False, 2))
  assert not np.allclose(run(True, 1), run(False, 1))
  assert not np.allclose(run(True, 1), run(True, 2))


def test_bfloat16_matmuls_keep_float32_params(image):
  f32 = small_model('map', head_zeroinit=False)
  variables = f32.init(jax.random.key(0), image, train=False)
  bf16 = small_model('map', head_zeroinit=False, dtype_mm='bfloat16')
  bf16_vars = bf16.init(jax.random.key(0), image, train=False)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nn.meta.unbox(bf16_vars)))
  want, _ = f32.apply(variables, image, train=False)
  got, _ = bf16.apply(variables, image, train=False)
  np.testing.assert_allclose(got, want, atol=0.1 * np.abs(want).max())


# --- 5. Logical partitioning ----------------------------------------------------------

RULES = [('embed', 'fsdp'), ('mlp', 'model'), ('heads', 'model'), ('batch', 'data')]


def test_every_param_is_logically_partitioned(image):
  variables = jax.eval_shape(lambda: small_model('map', rep=8).init(
      jax.random.key(0), image, train=False))
  is_box = lambda x: isinstance(x, nn.LogicallyPartitioned)
  leaves = jax.tree.leaves(variables['params'], is_leaf=is_box)
  assert leaves and all(is_box(x) and len(x.names) == x.value.ndim for x in leaves)


def test_partition_specs_under_rules(image):
  mesh = jax.make_mesh((1, 1, 1), ('data', 'fsdp', 'model'), axis_types=(AxisType.Auto,) * 3)
  model = small_model('map')
  with jax.set_mesh(mesh), nn.logical_axis_rules(RULES):
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), image, train=False))
    specs = nn.logical_to_mesh(nn.get_partition_spec(variables))['params']
  block = specs['Transformer']['encoderblock_0']
  assert block['MlpBlock_0']['Dense_0']['kernel'] == P('fsdp', 'model')
  assert block['MlpBlock_0']['Dense_1']['kernel'] == P('model', 'fsdp')
  assert block['MultiHeadDotProductAttention_0']['query']['kernel'] == P('fsdp', 'model', None)
  assert block['MultiHeadDotProductAttention_0']['out']['kernel'] == P('model', None, 'fsdp')
  assert block['LayerNorm_0']['scale'] == P(None)
  assert specs['embedding']['kernel'] == P(None, None, None, 'fsdp')
  assert specs['pos_embedding'] == P(None, None, 'fsdp')
  assert specs['MAPHead_0']['probe'] == P(None, None, 'fsdp')
  assert specs['head']['kernel'] == P('fsdp', None)


def test_apply_under_mesh_and_rules_matches_plain(image):
  # 2x2x2 when run with XLA_FLAGS=--xla_force_host_platform_device_count=8.
  axes = (2, 2, 2) if jax.device_count() >= 8 else (1, 1, 1)
  mesh = jax.make_mesh(axes, ('data', 'fsdp', 'model'), axis_types=(AxisType.Auto,) * 3)
  model = small_model('tok', head_zeroinit=False)
  variables = model.init(jax.random.key(0), image, train=False)
  want, _ = model.apply(variables, image, train=False)
  with jax.set_mesh(mesh), nn.logical_axis_rules(RULES):
    got, _ = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, image)
  np.testing.assert_allclose(got, want, atol=1e-5)
