"""The preprocess stage: intensity corrections of registered PFIB-SEM stacks (Minnmann et al.
2024): brightness drift along z, shading, curtaining stripes (wavelet-FFT, Münch et al. 2009)
and contrast, slice by slice and lazily (method notes: README, *Stage notes*)."""
from voxelyte.preprocess.filters import (brightness_factors, destripe_slice, gaussian_blur_large,
                                         polynomial_shading, stripe_power)
from voxelyte.preprocess.stage import preprocess
from voxelyte.preprocess.steps import (contrast_percentiles, correct_brightness_drift,
                                       correct_shading, destripe, normalise_contrast,
                                       slice_medians)

__all__ = ["brightness_factors", "contrast_percentiles", "correct_brightness_drift",
           "correct_shading", "destripe", "destripe_slice", "gaussian_blur_large",
           "normalise_contrast", "polynomial_shading", "preprocess", "slice_medians",
           "stripe_power"]
