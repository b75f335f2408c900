"""Image augmentation ops in pure JAX (jit/vmap-able, per-example keys by the caller).

`pointwise` (brightness, contrast, sharpness, posterize, solarize, invert, equalize,
autocontrast), `spatial` (rotate, shear, translate, cutout, crops, patch dropout) and
`other` (JPEG quantisation, mixup): RandAugment's ops with google-research/big_vision's
`pp/autoaugment.py` semantics, on float images in [0, scale] with any number of
channels.  FroFA (`jaxvision.projects.frofa.augment`) applies them to frozen feature
maps; they work on images just as well.
"""
