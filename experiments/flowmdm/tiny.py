r"""FlowMDM on the embedded real mocap (DeepMimic clips in the HumanML3D layout).

  python -m jaxvision.train --config=experiments/flowmdm/tiny.py --workdir=workdirs/flowmdm_tiny

Trains a small FlowMDM (HumanML3D-style: one text per motion, BPE stage drawn per
sample) with a small text encoder trained from scratch, on 2 CPU cores in under ten
minutes, then composes 3-segment motions from the dataset's captions and reports Peak
Jerk / AUJ at the transitions for BPE (switch step 60) and absolute-only sampling
(s = -1).  The compositions are saved to <workdir>/compose_compositions.npz; render one:

  python -m jaxvision.projects.flowmdm.render --workdir=workdirs/flowmdm_tiny --index=0

`:tiny` is the 2-step smoke test.
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
import ml_collections


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, steps=1500)
  c = ml_collections.ConfigDict()
  c.project = 'flowmdm'
  c.seed = 0
  c.total_steps = arg.steps
  c.log_every = 100

  c.input = dict(dataset='deepmimic', batch_size=16, max_frames=96, max_segments=1,
                 min_length=10, max_length=200, fps=20.0)
  c.model = dict(input_dim=215, latent_dim=128, num_layers=4, num_heads=4, head_dim=32,
                 ff_size=256, dropout=0.1, layer_dropout=0.1, rpe_horizon=30, rotary_dim=16,
                 text_dim=128,
                 text_encoder=dict(type='small', vocab_size=512, max_tokens=12, width=64,
                                   depth=1, num_heads=4))
  c.diffusion = dict(steps=1000, schedule='cosine', cond_mask_prob=0.1, bpe_training_ratio=0.5)
  c.sampling = dict(bpe_switch_step=60, guidance_scale=2.5, respacing='100', method='ddpm')
  c.optimizer = dict(name='adamw', weight_decay=0.0, wd_mask=None, grad_clip_norm=1.0)
  c.schedule = dict(type='cosine', base_lr=1e-3, warmup_steps=100, end_lr=1e-5)
  c.evals = dict(compose=dict(type='composition', split='test', num_compositions=16,
                              segments=3, batch_size=16, transition_length=30,
                              bpe_switch_steps=(-1,), every=0, t2m_workdir=''))
  c.checkpoint = dict(every=1000, keep=2)

  if arg.tiny:
    c.total_steps = 2
    c.log_every = 1
    c.input.batch_size = 8
    c.model.update(latent_dim=32, num_layers=1, ff_size=64, head_dim=16, rotary_dim=8,
                   text_dim=32)
    c.model.text_encoder.update(width=16)
    c.sampling.respacing = '4'
    c.evals.compose.update(num_compositions=2, batch_size=2)
    c.schedule.warmup_steps = 1
    c.checkpoint.every = 1
  return with_defaults(c)
