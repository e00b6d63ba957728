"""Training pairs made on the training device, a batch at a time, with torch operations.

On a GPU the data loader's CPU processes cannot refocus light fields as fast
as the network trains; here the pairs are made where the network runs:

- :mod:`.base`: the :class:`DeviceSource` interface, the per-step generator
  (a batch depends only on (seed, step, rank)), apertures and flips;
- :mod:`.procedural`: :class:`ProceduralSource`, procedural light-field pairs
  rendered on the device (the physics of ``lightfield.synthetic`` and
  ``lightfield.refocus``, batched);
- :mod:`.lightfields`: :class:`LightFieldSource`, pairs refocused on the device
  from light fields held there;
- :mod:`.pairs`: :class:`PairSource`, real pairs preloaded once, cropped and
  flipped on the device;
- :mod:`.mix`: :class:`MixSource`, several sources in given proportions;
- :mod:`.batches`: :func:`device_source` (a run's dataset as a source) and
  :class:`DeviceBatches` (what the trainer iterates over).

The trainer uses them with ``data_on_device`` (see
:class:`~..config.TrainConfig`); the same code runs, and is tested, on the CPU.
"""

from .base import DeviceSource, step_generator
from .batches import DeviceBatches, device_source
from .lightfields import LightFieldSource
from .mix import MixSource
from .pairs import PairSource
from .procedural import ProceduralSource, Scene

__all__ = ["DeviceBatches", "DeviceSource", "LightFieldSource", "MixSource", "PairSource", "ProceduralSource",
           "Scene", "device_source", "step_generator"]
