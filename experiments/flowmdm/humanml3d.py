r"""FlowMDM on HumanML3D with the upstream hyperparameters (README training command).

  python -m jaxvision.train --config=experiments/flowmdm/humanml3d.py:data_dir=/data/HumanML3D \
      --workdir=workdirs/flowmdm_humanml3d

`data_dir` holds HumanML3D in its own layout (new_joint_vecs/, texts/, Mean.npy,
Std.npy, train/val/test.txt) plus `clip_text_embeddings.npz`: every caption's frozen
CLIP ViT-B/32 embedding with MDM's HumanML3D encoding (20 words, zero-padded to 77),
made once by `python -m jaxvision.projects.flowmdm.precompute_text`.  Upstream trains
600k steps (released checkpoint: 500k), batch 64, AdamW lr 1e-4, no decay, RPE horizon
150; samples with BPE switch step 60 and guidance 2.5; L_tr = 60 for PJ / AUJ.
`compositions=<json>` evaluates on upstream's composition file (e.g.
dataset/humanml_test_set.json).

`:tiny` is the 2-step smoke test; where data_dir does not hold HumanML3D it runs on the
embedded DeepMimic mocap (215 features) with a small text encoder.
"""

import os

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
import ml_collections


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, data_dir='dataset/HumanML3D', compositions='',
                  t2m_checkpoint='', t2m_stats_dir='', steps=600_000, single_step=False)
  c = ml_collections.ConfigDict()
  c.project = 'flowmdm'
  c.seed = 10
  c.total_steps = arg.steps
  c.log_every = 1000

  c.input = dict(dataset='humanml3d', data_dir=arg.data_dir, batch_size=64, max_frames=196,
                 max_segments=1, min_length=40, max_length=200, fps=20.0,
                 text_embeddings=os.path.join(arg.data_dir, 'clip_text_embeddings.npz'),
                 num_workers=4)
  c.model = dict(input_dim=263, latent_dim=512, num_layers=8, num_heads=4, head_dim=64,
                 ff_size=1024, dropout=0.1, layer_dropout=0.1, rpe_horizon=150,
                 # block-wise band (linear in T, equal results); dense is faster at
                 # training lengths, banded for long compositions
                 banded_attention=False,
                 text_dim=512, text_encoder=dict(type='precomputed'))
  c.diffusion = dict(steps=1000, schedule='cosine', variance='fixed_small',
                     cond_mask_prob=0.1, bpe_training_ratio=0.5)
  c.sampling = dict(bpe_switch_step=60, guidance_scale=2.5, respacing='', method='ddpm')
  # Upstream's loop calls opt.step() twice per batch (forward_backward, then
  # mp_trainer.optimize): two AdamW updates from one gradient.  `single_step` = clean.
  c.optimizer = dict(name='adamw', weight_decay=0.0, wd_mask=None,
                     updates_per_step=1 if arg.single_step else 2)
  c.schedule = dict(type='constant', base_lr=1e-4)
  c.evals = dict(compose=dict(type='composition', split='test', compositions=arg.compositions,
                              num_compositions=32, segments=32, batch_size=1,
                              transition_length=60, gt_jerk=0.033031363,
                              bpe_switch_steps=(), every=0,
                              # the released evaluator (finest.tar converted to .npz),
                              # GloVe folder and t2m_mean/std folder of HumanML3D
                              t2m_checkpoint=arg.t2m_checkpoint,
                              t2m_word_vectors=os.path.join(arg.data_dir, 'glove'),
                              t2m_stats_dir=arg.t2m_stats_dir))
  c.checkpoint = dict(every=50_000, keep=5)

  if arg.tiny:
    c.total_steps = 2
    c.log_every = 1
    c.input.update(batch_size=8, num_workers=0)
    c.model.update(latent_dim=32, num_layers=1, ff_size=64, head_dim=16, rotary_dim=8,
                   text_dim=32)
    c.sampling.respacing = '4'
    c.evals.compose.update(num_compositions=2, segments=3, batch_size=2, gt_jerk=0.0,
                           transition_length=20, t2m_checkpoint='')
    c.checkpoint.every = 1
    if not os.path.exists(os.path.join(arg.data_dir, 'new_joint_vecs')):
      c.input.update(dataset='deepmimic', data_dir='', max_frames=96, min_length=10,
                     text_embeddings='')
      c.model.update(input_dim=215, text_encoder=dict(type='small', width=16, depth=1,
                                                      max_tokens=12, vocab_size=256))
  return with_defaults(c)
