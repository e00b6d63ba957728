"""Training pairs made on the training device, a batch at a time, with torch operations.

On a GPU the data loader's CPU processes cannot refocus light fields as fast
as the network trains; here the pairs are made where the network runs:

- ``base``: the :class:`~napari_lfdeblur.training.ondevice.DeviceSource` interface, the per-step generator
  (a batch depends only on (seed, step, rank)), apertures and flips;
- ``procedural``: :class:`~napari_lfdeblur.training.ondevice.ProceduralSource`, procedural light-field pairs
  rendered on the device (the physics of ``lightfield.synthetic`` and
  ``lightfield.refocus``, batched);
- ``lightfields``: :class:`~napari_lfdeblur.training.ondevice.LightFieldSource`, pairs refocused on the device
  from light fields held there;
- ``pairs``: :class:`~napari_lfdeblur.training.ondevice.PairSource`, real pairs preloaded once, cropped and
  flipped on the device;
- ``mix``: :class:`~napari_lfdeblur.training.ondevice.MixSource`, several sources in given proportions;
- ``batches``: :func:`~napari_lfdeblur.training.ondevice.device_source` (a run's dataset as a source) and
  :class:`~napari_lfdeblur.training.ondevice.DeviceBatches` (what the trainer iterates over).

The trainer uses them with ``data_on_device`` (see
:class:`~napari_lfdeblur.TrainConfig`); the same code runs, and is tested, on the CPU.
"""

from .base import DeviceSource, step_generator
from .batches import DeviceBatches, device_source
from .lightfields import LightFieldSource
from .mix import MixSource
from .pairs import PairSource
from .procedural import ProceduralSource, Scene

__all__ = ["DeviceBatches", "DeviceSource", "LightFieldSource", "MixSource", "PairSource", "ProceduralSource",
           "Scene", "device_source", "step_generator"]
