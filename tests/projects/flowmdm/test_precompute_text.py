"""Precomputed CLIP text conditions: written for every caption, read by the pipeline."""

import numpy as np
import pytest

from jaxvision.projects.flowmdm import deepmimic_dataset
from jaxvision.nn import clip_checkpoint
from jaxvision.nn import clip_text
from jaxvision.nn import clip_tokenizer
from jaxvision.projects.flowmdm import precompute_text
from tests.projects.flowmdm.test_project import first_batch, small_config


def _openai_state_dict(rng, width=64, layers=1, embed=32, vocab=49408, context=77):
  sd = {'token_embedding.weight': rng.normal(0, 0.02, (vocab, width)),
        'positional_embedding': rng.normal(0, 0.01, (context, width)),
        'ln_final.weight': np.ones(width), 'ln_final.bias': np.zeros(width),
        'text_projection': rng.normal(0, width ** -0.5, (width, embed))}
  for i in range(layers):
    p = f'transformer.resblocks.{i}.'
    sd.update({p + 'ln_1.weight': np.ones(width), p + 'ln_1.bias': np.zeros(width),
               p + 'attn.in_proj_weight': rng.normal(0, 0.05, (3 * width, width)),
               p + 'attn.in_proj_bias': np.zeros(3 * width),
               p + 'attn.out_proj.weight': rng.normal(0, 0.05, (width, width)),
               p + 'attn.out_proj.bias': np.zeros(width),
               p + 'ln_2.weight': np.ones(width), p + 'ln_2.bias': np.zeros(width),
               p + 'mlp.c_fc.weight': rng.normal(0, 0.05, (4 * width, width)),
               p + 'mlp.c_fc.bias': np.zeros(4 * width),
               p + 'mlp.c_proj.weight': rng.normal(0, 0.05, (width, 4 * width)),
               p + 'mlp.c_proj.bias': np.zeros(width)})
  return {k: v.astype(np.float32) for k, v in sd.items()}


def test_precomputed_embeddings_feed_the_pipeline(tmp_path):
  try:
    clip_tokenizer.openai_bpe_path()
  except FileNotFoundError:
    pytest.skip('the CLIP BPE file ships in the open-clip-torch wheel (not installed)')
  ckpt = tmp_path / 'clip.npz'
  np.savez(ckpt, **_openai_state_dict(np.random.default_rng(0)))
  root = deepmimic_dataset.ensure_layout(str(tmp_path / 'cache'))
  out = tmp_path / 'emb.npz'
  assert precompute_text.main(['--dataset=humanml3d', f'--data_dir={root}', f'--clip={ckpt}',
                               f'--out={out}']) == 0
  table = clip_text.load_text_embeddings(str(out))
  texts = precompute_text.dataset_texts('humanml3d', root)
  expected = {c for caps in deepmimic_dataset.CAPTIONS.values() for c in caps}
  expected |= {deepmimic_dataset.swap_left_right(c) for c in expected}   # mirrored texts
  assert set(table) == set(texts) == expected
  # An entry is the CLIP tower on MDM's 22-token encoding of that caption.
  model, params = clip_checkpoint.load_clip_text(str(ckpt))
  tok = clip_tokenizer.BPETokenizer.openai()
  ids = tok.tokenize(['a person jumps forward'], context_length=22, truncate=True, pad_to=77)
  np.testing.assert_allclose(table['a person jumps forward'],
                             np.asarray(model.apply({'params': params}, ids)[0])[0], atol=1e-5)
  config = small_config(tmp_path, **{'model.text_encoder.type': 'precomputed',
                                     'model.text_dim': 32, 'input.text_embeddings': str(out)})
  batch = first_batch(config)
  assert batch['text_emb'].shape == (8, 1, 32)
  norms = {round(float(np.linalg.norm(v)), 4) for v in table.values()}
  assert round(float(np.linalg.norm(batch['text_emb'][0, 0])), 4) in norms
