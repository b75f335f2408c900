r"""FocusMAE pre-training, tiny: a small video MAE on the real echocardiography cine.

  python -m jaxvision.train --config=experiments/focusmae/tiny.py \
      --workdir=workdirs/focusmae_tiny

The cine is pydicom-data's `color3d_jpeg_baseline.dcm` (120 frames, 480 x 640), read by
jaxvision.data.dicom_video; clips of 4 frames (sampling rate 3) resized to 48 x 64,
tubes of 2 x 16 x 16 -> 2 x 3 x 4 = 24 tokens, mask ratio 0.75 with FocusMAE masking
(no detector boxes in the cine: upstream's central-box prior). `:clips=1` overfits a
single clip (the test); `:tiny` is a 2-step smoke test; `:mask=random|tube|frame|focus` picks the masking.
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
import ml_collections


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, steps=300, clips=0, frames=24, mask='focus')
  c = ml_collections.ConfigDict()
  c.project = 'focusmae'
  c.seed = 0
  c.total_steps = arg.steps
  c.log_every = 20
  c.model = dict(frames=4, image_size=(48, 64), tubelet=2, patch=16, mask_ratio=0.75,
                 mask_type=arg.mask, encoder_width=64, encoder_depth=2, encoder_heads=4,
                 decoder_width=32, decoder_depth=1, decoder_heads=2,
                 adaptive=True, sampler_heads=4)
  c.input = dict(dicom='echo_cine', batch_size=8, sampling_rate=3, clip_stride=2,
                 max_frames=arg.frames, num_clips=arg.clips)
  c.masking = dict(delta=2.0, inflate=1.2, direction='mask')
  c.optimizer = dict(name='adamw', weight_decay=0.05, b1=0.9, b2=0.95, grad_clip_norm=1.0)
  c.schedule = dict(type='cosine', base_lr=3e-3, warmup_steps=10, end_lr=0.0)
  c.evals = dict(val=dict(type='reconstruction', split='val', every=0, batch_size=8))
  c.checkpoint = dict(every=arg.steps, keep=1)
  if arg.tiny:     # a 2-step smoke test
    c.total_steps = 2
    c.log_every = 1
    c.input.max_frames = 12
    c.schedule.warmup_steps = 1
    c.checkpoint.every = 1
  return with_defaults(c)
