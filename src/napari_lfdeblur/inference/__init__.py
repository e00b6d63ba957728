"""Deblurring images of any size: ``deblur.deblur`` (numpy now, or lazy dask), ``pyramid.deblur_for_viewer``
(a lazy, multiscale result for viewers: what the Deblur dock shows), and ``runtime.Runtime``, what runs the
network.  Importing this package loads no torch."""
