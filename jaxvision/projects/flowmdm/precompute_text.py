r"""Embed every text of a dataset once with frozen CLIP (FlowMDM's precomputed conditions).

  python -m jaxvision.projects.flowmdm.precompute_text --dataset=humanml3d \
      --data_dir=/data/HumanML3D --clip=ViT-B-32.npz [--out=<data_dir>/clip_text_embeddings.npz]

`--clip` is OpenAI's CLIP state dict (`.pt` with torch installed, or the `.npz` that
`python -m jaxvision.nn.convert_torch_state_dict ViT-B-32.pt ViT-B-32.npz` makes);
`--bpe` is CLIP's `bpe_simple_vocab_16e6.txt.gz` (default: from the open-clip-torch
wheel).  HumanML3D texts use MDM's encoding (at most 20 words: context 22, zero-padded
to 77), Babel labels the full 77-token context, as upstream.  The output is the `.npz`
(`texts`, `embeddings`) that `text_encoder.type='precomputed'` reads.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

from jaxvision.data import babel
from jaxvision.data import humanml3d
from jaxvision.nn import clip_checkpoint
from jaxvision.nn import clip_text
from jaxvision.nn import clip_tokenizer


def dataset_texts(dataset: str, data_dir: str, splits=('train', 'val', 'test')) -> list[str]:
  texts = []
  for split in splits:
    if dataset == 'babel':
      if not os.path.exists(os.path.join(data_dir, f'{split}.json')):
        continue
      for ann in babel.read_annotations(data_dir, split).values():
        for label in (ann.get('frame_ann') or {}).get('labels', []):
          texts.append(babel.fix_spelling(label['proc_label']))   # the reader's text
    else:
      if not os.path.exists(os.path.join(data_dir, f'{split}.txt')):
        continue
      for name in humanml3d.read_split(data_dir, split):
        texts += [t.caption for t in humanml3d.read_texts(data_dir, name)]
  if not texts:
    raise ValueError(f'no texts found for {dataset} in {data_dir}')
  return list(dict.fromkeys(texts))


def embed(texts, clip_source, bpe_path=None, humanml3d_hack=True, batch_size=256):
  model, params = clip_checkpoint.load_clip_text(clip_source)
  tok = clip_tokenizer.BPETokenizer.openai(bpe_path)
  context = 22 if humanml3d_hack else 77
  encode = jax.jit(lambda t: model.apply({'params': params}, t)[0])
  return clip_text.embed_texts(
      lambda t: encode(np.asarray(t)),
      lambda ts: tok.tokenize(list(ts), context_length=context, truncate=True, pad_to=77),
      texts, batch_size=batch_size)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--dataset', choices=('humanml3d', 'babel'), required=True)
  p.add_argument('--data_dir', required=True)
  p.add_argument('--clip', required=True)
  p.add_argument('--bpe', default=None)
  p.add_argument('--out', default='')
  a = p.parse_args(argv)
  texts = dataset_texts(a.dataset, a.data_dir)
  table = embed(texts, a.clip, a.bpe, humanml3d_hack=a.dataset == 'humanml3d')
  out = a.out or os.path.join(a.data_dir, 'clip_text_embeddings.npz')
  clip_text.save_text_embeddings(out, table)
  print(f'embedded {len(table)} texts -> {out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
