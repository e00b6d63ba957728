"""Image files: reading, writing and the one table of formats, like napari's ``napari_builtins/io``.

Unreadable files and images a format cannot hold raise :class:`~napari_lfdeblur.errors.ImageFileError`.
Nothing here imports torch.
"""

from __future__ import annotations

from ..errors import ImageFileError, OutputError
from .atomic import (
    atomic_dir,
    atomic_path,
    check_writable_file,
    is_place_error,
    link_or_copy,
    output_error,
    writable_folder,
    writing_failed,
)
from .chunks import CHUNK
from .formats import (
    FORMATS,
    IMAGE_SUFFIXES,
    NOT_WRITTEN_SUFFIXES,
    WRITE_SUFFIXES,
    ImageFormat,
    describe_formats,
    image_files,
    image_format,
    is_image_path,
    output_format,
    result_format,
    stem,
    suffix_of,
)
from .pixels import grey_or_rgb, has_channel_axis, to_float, to_rgb, to_uint8, to_uint16
from .read import (
    ImageHeader,
    ImageInfo,
    image_header,
    is_ome_zarr_image,
    open_image,
    open_image_info,
    open_image_levels,
    read_image,
)
from .write import TIFF_TILE, check_writable, save_image, save_image_streaming

__all__ = [
    "CHUNK",
    "FORMATS",
    "IMAGE_SUFFIXES",
    "NOT_WRITTEN_SUFFIXES",
    "TIFF_TILE",
    "WRITE_SUFFIXES",
    "ImageFileError",
    "ImageFormat",
    "ImageHeader",
    "ImageInfo",
    "OutputError",
    "atomic_dir",
    "atomic_path",
    "check_writable",
    "check_writable_file",
    "describe_formats",
    "grey_or_rgb",
    "has_channel_axis",
    "image_files",
    "image_format",
    "image_header",
    "is_image_path",
    "is_ome_zarr_image",
    "is_place_error",
    "link_or_copy",
    "open_image",
    "open_image_info",
    "open_image_levels",
    "output_error",
    "output_format",
    "read_image",
    "result_format",
    "save_image",
    "save_image_streaming",
    "stem",
    "suffix_of",
    "to_float",
    "to_rgb",
    "to_uint8",
    "to_uint16",
    "writable_folder",
    "writing_failed",
]
