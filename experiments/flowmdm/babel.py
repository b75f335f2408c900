r"""FlowMDM on Babel with the upstream hyperparameters (README training command).

  python -m jaxvision.train --config=experiments/flowmdm/babel.py:data_dir=/data/babel \
      --workdir=workdirs/flowmdm_babel

`data_dir` holds Babel-style data (`jaxvision/data/babel.py`): `<split>.json` in
BABEL's annotation format, `motions/<babel_sid>.npz` with the AMASS SMPL-H `poses`
(T, 156 axis-angle) and `trans` (T, 3) at 30 fps (upstream's babel-smplh-30fps-male
sequences), and `clip_text_embeddings.npz` with every (spelling-fixed) action label's
frozen CLIP ViT-B/32 embedding.  As upstream, each training window's 135-d features
(root height, root xy velocity, 22 joints x 6D) are computed on the window alone
(`input.babel_features='window'`; 'sequence' slices per-sequence `motions/<sid>.npy`
features instead) and normalised with upstream's shipped Babel statistics
(`input.stats='upstream'`; 'data_dir' = your Mean.npy / Std.npy).  Upstream: 1.5M steps
(released checkpoint 1.3M), batch 64, AdamW lr 1e-4, windows as `babel_flowmdm.py` (linked
segments, at most 200 frames, 10 segments) with 45..250 frames in all, RPE horizon 100;
samples with BPE switch step 125 and guidance 1.5; L_tr = 30.
Babel has no test split: evaluation uses `val`.  PJ / AUJ decode the features to joints
with SMPL-H forward kinematics (`jaxvision/projects/flowmdm/smpl_features.py`), which needs the body's
22 rest joints in `<data_dir>/smpl_rest_joints.npy` (from the licensed SMPL-H model).
`jaxvision.projects.flowmdm.smpl_features.amass_to_features` makes the 135-d features from AMASS.

`:tiny` is the 2-step smoke test; where data_dir does not hold Babel it trains on the
embedded DeepMimic mocap (one segment per example) with a small text encoder.
"""

import os

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
import ml_collections


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, data_dir='dataset/babel', compositions='', steps=1_500_000,
                  single_step=False)
  c = ml_collections.ConfigDict()
  c.project = 'flowmdm'
  c.seed = 10
  c.total_steps = arg.steps
  c.log_every = 1000

  c.input = dict(dataset='babel', data_dir=arg.data_dir, batch_size=64, max_frames=250,
                 max_segments=10, min_length=45, max_length=250, window_frames=200, fps=30.0,
                 text_embeddings=os.path.join(arg.data_dir, 'clip_text_embeddings.npz'),
                 stats='upstream', babel_features='window', num_workers=4)
  c.model = dict(input_dim=135, latent_dim=512, num_layers=8, num_heads=4, head_dim=64,
                 ff_size=1024, dropout=0.1, layer_dropout=0.1, rpe_horizon=100,
                 # block-wise band (linear in T, equal results); dense is faster at
                 # training lengths, banded for long compositions
                 banded_attention=False,
                 text_dim=512, text_encoder=dict(type='precomputed'))
  c.diffusion = dict(steps=1000, schedule='cosine', variance='fixed_small',
                     cond_mask_prob=0.1, bpe_training_ratio=0.5)
  c.sampling = dict(bpe_switch_step=125, guidance_scale=1.5, respacing='', method='ddpm')
  # Upstream's loop calls opt.step() twice per batch (forward_backward, then
  # mp_trainer.optimize): two AdamW updates from one gradient.  `single_step` = clean.
  c.optimizer = dict(name='adamw', weight_decay=0.0, wd_mask=None,
                     updates_per_step=1 if arg.single_step else 2)
  c.schedule = dict(type='constant', base_lr=1e-4)
  # PJ / AUJ on Babel decode the features through SMPL-H forward kinematics, which needs
  # the body's 22 rest joints (from the licensed SMPL-H model) as <data_dir>/smpl_rest_joints.npy.
  c.evals = dict(compose=dict(type='composition', split='val', compositions=arg.compositions,
                              num_compositions=32, segments=32, batch_size=1,
                              transition_length=30, gt_jerk=0.016383045, every=0,
                              smpl_rest_joints=os.path.join(arg.data_dir,
                                                            'smpl_rest_joints.npy')))
  c.checkpoint = dict(every=50_000, keep=5)

  if arg.tiny:
    c.total_steps = 2
    c.log_every = 1
    c.input.update(batch_size=8, num_workers=0)
    c.model.update(latent_dim=32, num_layers=1, ff_size=64, head_dim=16, rotary_dim=8,
                   text_dim=32)
    c.sampling.respacing = '4'
    c.checkpoint.every = 1
    c.evals.compose.update(num_compositions=2, segments=3, batch_size=2)
    if not os.path.exists(os.path.join(arg.data_dir, 'motions')):
      c.input.update(dataset='deepmimic', data_dir='', max_frames=96, max_segments=1,
                     min_length=10, max_length=200, fps=20.0, text_embeddings='',
                     stats='data_dir')
      c.model.update(input_dim=215, text_encoder=dict(type='small', width=16, depth=1,
                                                      max_tokens=12, vocab_size=256))
      c.evals = dict(compose=dict(type='composition', num_compositions=2, segments=3,
                                  batch_size=2, transition_length=20, split='test'))
  return with_defaults(c)
