"""Images <-> numpy: sensor_msgs/Image encodings and sensor_msgs/CompressedImage (jpeg / png).

Image conventions
-----------------
* `image_from_msg` returns the image *as stored* ("native"): the dtype and channel order the encoding names
  (rgb8 stays RGB, bgra8 keeps alpha, mono16 is uint16 in host byte order, 32FC1 is float32, yuv422 is the raw
  HxWx2 uint8 byte pairs). Writing that array back with the same encoding gives identical message data, so the
  lossless encodings round-trip exactly.
* `to_pipeline` converts a native image to what the pipeline takes (see `perception.frame`): **BGR uint8 HxWx3**
  for colour (rgb8, rgba8, bgra8, yuv422/uyvy, yuv422_yuy2/yuyv, bayer_*) and **mono uint8 HxW** for 8-bit
  grey. **mono16 / 16UC1 stays uint16 HxW** by default (depth or 12/16-bit cameras: no information is thrown
  away); pass `mono16_scale` (e.g. 1/256 for a full-range 16-bit camera, 1/16 for 12-bit data) to get uint8
  = clip(round(value * scale), 0, 255). Float encodings (32FC1 ...) are not camera images and are refused there.
* Writing: `image_to_msg` infers the encoding from the array (uint8 HxW mono8, uint8 HxWx3 bgr8, uint8 HxWx4
  bgra8, uint16 HxW mono16, float32 HxW 32FC1); an explicit encoding takes the array in that encoding's layout
  (an "rgb8" array is RGB). Data is written little-endian (is_bigendian = 0), step = width * bytes per pixel.

Every inconsistency in an incoming image (unknown encoding, step < width * bytes per pixel,
step * height != len(data), odd width for yuv422, corrupt JPEG ...) raises `perception.errors.InputError`
whose subject names the topic and whose message says what is wrong.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import cv2
import numpy as np

from perception.errors import InputError
from perception.frame import Header
from perception.io.typestore import header_msg, msg_class
from perception.io.typestore import subject as _subject


class Encoding(NamedTuple):
    dtype: np.dtype
    channels: int


_NAMED: dict[str, Encoding] = {
    "mono8": Encoding(np.dtype(np.uint8), 1),
    "mono16": Encoding(np.dtype(np.uint16), 1),
    "bgr8": Encoding(np.dtype(np.uint8), 3),
    "rgb8": Encoding(np.dtype(np.uint8), 3),
    "bgra8": Encoding(np.dtype(np.uint8), 4),
    "rgba8": Encoding(np.dtype(np.uint8), 4),
    "bgr16": Encoding(np.dtype(np.uint16), 3),
    "rgb16": Encoding(np.dtype(np.uint16), 3),
    # packed 4:2:2, two bytes per pixel: yuv422 = UYVY byte order, yuv422_yuy2 = YUYV (sensor_msgs image_encodings)
    "yuv422": Encoding(np.dtype(np.uint8), 2),
    "uyvy": Encoding(np.dtype(np.uint8), 2),
    "yuv422_yuy2": Encoding(np.dtype(np.uint8), 2),
    "yuyv": Encoding(np.dtype(np.uint8), 2),
    "bayer_rggb8": Encoding(np.dtype(np.uint8), 1),
    "bayer_bggr8": Encoding(np.dtype(np.uint8), 1),
    "bayer_gbrg8": Encoding(np.dtype(np.uint8), 1),
    "bayer_grbg8": Encoding(np.dtype(np.uint8), 1),
}
_GENERIC = re.compile(r"^(8|16|32|64)(U|S|F)C([1-4])$")
_GENERIC_DTYPES = {
    ("8", "U"): np.uint8, ("8", "S"): np.int8, ("16", "U"): np.uint16, ("16", "S"): np.int16,
    ("32", "S"): np.int32, ("32", "F"): np.float32, ("64", "F"): np.float64,
}
#: Encodings the pipeline accepts as camera images (after `to_pipeline`).
CAMERA_ENCODINGS = (
    "mono8", "8UC1", "bgr8", "8UC3", "rgb8", "bgra8", "8UC4", "rgba8", "mono16", "16UC1", "bgr16", "rgb16",
    "yuv422", "uyvy", "yuv422_yuy2", "yuyv", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
)
# OpenCV's Bayer names are shifted by one pixel relative to ROS (this is cv_bridge's mapping).
_BAYER = {
    "bayer_rggb8": cv2.COLOR_BayerBG2BGR, "bayer_bggr8": cv2.COLOR_BayerRG2BGR,
    "bayer_gbrg8": cv2.COLOR_BayerGR2BGR, "bayer_grbg8": cv2.COLOR_BayerGB2BGR,
}


def encoding_info(encoding: str, *, subject: str | None = None) -> Encoding:
    """dtype and channel count of a sensor_msgs/Image encoding, or InputError for an unknown one."""
    if encoding in _NAMED:
        return _NAMED[encoding]
    m = _GENERIC.match(encoding or "")
    if m and (m.group(1), m.group(2)) in _GENERIC_DTYPES:
        return Encoding(np.dtype(_GENERIC_DTYPES[(m.group(1), m.group(2))]), int(m.group(3)))
    raise InputError(
        f"unsupported image encoding '{encoding}'",
        subject=subject,
        hint="supported: " + ", ".join(CAMERA_ENCODINGS) + ", 32FC1 and other <bits><U|S|F>C<n>",
    )


def infer_encoding(image: np.ndarray, *, subject: str | None = None) -> str:
    """The encoding a pipeline array is written with: mono8, bgr8, bgra8, mono16, 32FC1 (or <bits>C<n>)."""
    image = np.asarray(image)
    channels = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else 0)
    kind = image.dtype.newbyteorder("=")
    table = {
        (np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "bgr8", (np.dtype(np.uint8), 4): "bgra8",
        (np.dtype(np.uint16), 1): "mono16", (np.dtype(np.uint16), 3): "bgr16", (np.dtype(np.float32), 1): "32FC1",
    }
    if (kind, channels) in table:
        return table[(kind, channels)]
    for (bits, letter), dt in _GENERIC_DTYPES.items():
        if np.dtype(dt) == kind and 1 <= channels <= 4:
            return f"{bits}{letter}C{channels}"
    raise InputError(
        f"cannot infer an image encoding for a {image.dtype} array of shape {image.shape}",
        subject=subject,
        hint="images are uint8 HxW / HxWx3 (BGR), uint16 HxW, or float32 HxW; or pass encoding=",
    )


def image_from_msg(msg, *, topic: str | None = None) -> np.ndarray:
    """The image of a sensor_msgs/Image in its native layout (see module doc), validated; a copy-free view
    when the data is already contiguous and little-endian, otherwise a copy."""
    encoding = str(msg.encoding)
    subject = _subject(topic, encoding)
    info = encoding_info(encoding, subject=subject)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(msg.data, dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data.view(np.uint8)
    if height <= 0 or width <= 0:
        raise InputError(f"empty image ({width}x{height})", subject=subject)
    bpp = info.dtype.itemsize * info.channels
    if step < width * bpp:
        raise InputError(
            f"step {step} is smaller than width {width} x {bpp} bytes per pixel = {width * bpp}", subject=subject
        )
    if step * height != data.size:
        raise InputError(
            f"data has {data.size} bytes but step {step} x height {height} = {step * height}", subject=subject
        )
    if info.channels == 2 and width % 2:
        raise InputError(f"packed 4:2:2 image with odd width {width}", subject=subject)
    if int(msg.is_bigendian) not in (0, 1):
        raise InputError(f"is_bigendian is {int(msg.is_bigendian)}, expected 0 or 1", subject=subject)
    rows = data.reshape(height, step)[:, : width * bpp]
    big = bool(msg.is_bigendian) and info.dtype.itemsize > 1
    stored = info.dtype.newbyteorder(">" if big else "<")
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    image = np.ascontiguousarray(rows).view(stored).reshape(shape)
    if not image.dtype.isnative:
        image = image.astype(info.dtype.newbyteorder("="))
    if not image.flags.writeable:
        image = image.copy()
    return image


def to_pipeline(
    image: np.ndarray, encoding: str, *, topic: str | None = None, mono16_scale: float | None = None
) -> np.ndarray:
    """A native image (`image_from_msg`) as the pipeline takes it: BGR uint8 HxWx3 or mono uint8 HxW; 16-bit mono
    stays uint16 unless `mono16_scale` is given (uint8 = clip(round(v * scale))). Always C-contiguous."""
    subject = _subject(topic, encoding)
    if encoding in ("mono8", "8UC1"):
        out = image
    elif encoding in ("bgr8", "8UC3"):
        out = image
    elif encoding == "rgb8":
        out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif encoding in ("bgra8", "8UC4"):
        out = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif encoding == "rgba8":
        out = cv2.cvtColor(image, cv2.COLOR_RGBA2BGR)
    elif encoding in ("yuv422", "uyvy"):
        out = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_YUV2BGR_UYVY)
    elif encoding in ("yuv422_yuy2", "yuyv"):
        out = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_YUV2BGR_YUY2)
    elif encoding in _BAYER:
        out = cv2.cvtColor(np.ascontiguousarray(image), _BAYER[encoding])
    elif encoding in ("mono16", "16UC1"):
        out = image if mono16_scale is None else _scale16(image, mono16_scale)
    elif encoding in ("bgr16", "rgb16"):
        out = _scale16(image, 1.0 / 256.0 if mono16_scale is None else mono16_scale)
        if encoding == "rgb16":
            out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    else:
        raise InputError(
            "not a camera image encoding (depth / disparity / generic data)",
            subject=subject,
            hint="camera topics must carry one of " + ", ".join(CAMERA_ENCODINGS),
        )
    return np.ascontiguousarray(out)


def _scale16(image: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.rint(image.astype(np.float32) * float(scale)), 0, 255).astype(np.uint8)


def image_to_msg(header: Header, image: np.ndarray, encoding: str | None = None, *, topic: str | None = None):
    """A sensor_msgs/Image from an array in the layout of `encoding` (inferred when None, see module doc)."""
    image = np.asarray(image)
    encoding = encoding or infer_encoding(image, subject=_subject(topic))
    subject = _subject(topic, encoding)
    info = encoding_info(encoding, subject=subject)
    expected = 2 if info.channels == 1 else 3
    if image.ndim == 3 and info.channels == 1 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != expected or (info.channels > 1 and image.shape[2] != info.channels):
        raise InputError(
            f"array of shape {image.shape} does not fit {encoding} ({info.channels} channel(s))", subject=subject
        )
    if image.dtype.newbyteorder("=") != info.dtype:
        raise InputError(f"array dtype {image.dtype} does not fit {encoding} ({info.dtype})", subject=subject)
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"empty image {image.shape}", subject=subject)
    if info.channels == 2 and image.shape[1] % 2:
        raise InputError(f"packed 4:2:2 image needs an even width, got {image.shape[1]}", subject=subject)
    little = np.ascontiguousarray(image, dtype=info.dtype.newbyteorder("<"))
    height, width = little.shape[:2]
    return msg_class("sensor_msgs/msg/Image")(
        header=header_msg(header),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * info.dtype.itemsize * info.channels,
        data=little.reshape(-1).view(np.uint8),
    )


# --- CompressedImage -------------------------------------------------------------------------------------------
def compressed_from_msg(msg, *, topic: str | None = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg / png; compressedDepth png) to BGR uint8, mono uint8 or,
    for 16-bit PNG, uint16. Corrupt data raises InputError."""
    fmt = str(msg.format)
    subject = _subject(topic) + f", format '{fmt}'"
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        if data.size < 12:
            raise InputError("compressedDepth data shorter than its 12-byte header", subject=subject)
        data = data[12:]  # ConfigHeader: format enum + 2 depth quantisation floats
    if data.size == 0:
        raise InputError("empty compressed image", subject=subject)
    image = cv2.imdecode(np.ascontiguousarray(data), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError("compressed image data could not be decoded (corrupt or not jpeg/png)", subject=subject)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    # image_transport compresses colour as bgr8 ("rgb8; jpeg compressed bgr8"), so imdecode gives BGR already.
    return np.ascontiguousarray(image)


def compressed_to_msg(header: Header, image: np.ndarray, fmt: str = "jpeg", *, quality: int = 95, topic: str | None = None):
    """A sensor_msgs/CompressedImage as image_transport's compressed plugin writes it (BGR or mono input)."""
    image = np.asarray(image)
    fmt = fmt.lower()
    if fmt not in ("jpeg", "jpg", "png"):
        raise InputError(f"unsupported compression format '{fmt}'", subject=_subject(topic), hint="use jpeg or png")
    encoding = infer_encoding(image, subject=_subject(topic))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt in ("jpeg", "jpg") else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(".jpg" if fmt in ("jpeg", "jpg") else ".png", image, params)
    if not ok:
        raise InputError(f"OpenCV could not encode a {encoding} image as {fmt}", subject=_subject(topic))
    name = "jpeg" if fmt in ("jpeg", "jpg") else "png"
    return msg_class("sensor_msgs/msg/CompressedImage")(
        header=header_msg(header), format=f"{encoding}; {name} compressed {encoding}", data=buf.reshape(-1)
    )


__all__ = [
    "CAMERA_ENCODINGS", "Encoding", "compressed_from_msg", "compressed_to_msg", "encoding_info", "image_from_msg",
    "image_to_msg", "infer_encoding", "to_pipeline",
]
