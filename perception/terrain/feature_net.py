"""The LAGR terrain feature extractor as an ONNX graph (REFERENCE.md section 1; Hadsell et al., JFR 2009).

    input  yuv_band  1 x 3 x 36 x W      YUV band, Y local-contrast normalised BEFORE the net (terrain.preprocess)
    conv   20 filters, 7 rows x 6 cols   valid, stride 1        -> 20 x 30 x (W-5)
    tanh
    max-pool 1 row x 4 cols, stride 1x4 (floor)                 -> 20 x 30 x P,  P = floor((W-5)/4)
    conv   100 filters, 6 rows x 5 cols  valid, stride 1        -> 100 x 25 x (P-4)
    tanh   -> output `features`

Kernel sizes are rows x cols. That reading is the one that makes the paper's arithmetic hold: every output
position sees a 3@12x25 input window (rows 7 + 6 - 1 = 12; cols 6 + (4 - 1) + (5 - 1) * 4 = 25), so each 3@12x25
window becomes one 100-d feature vector. Output (r, c) sees input rows r..r+11 and cols 4c..4c+24: the stride
between feature vectors is 1 row and 4 columns. With the paper's band width W = 484 (the default, static) the
output is 100@25x115 (conv1 -> 20@30x479, pool -> 20@30x119; the last 3 conv1 columns fall off the 1x4 pool).

Weights: `perception train features` (perception.terrain.feature_training: offline, label-free, layer-wise
encoder/decoder training) writes the trained model, with `trained_on` saying what it saw and `decoder["training"]`
its numbers. Without weights this module builds the DETERMINISTIC, UNTRAINED initialisation (seeded random
orthonormal filters: QR of a Gaussian matrix, numpy PCG64 seed 0; zero biases), which is also where training
starts, and its metadata says NOT TRAINED.

Write the untrained model:  python -m perception.terrain.feature_net --out untrained.onnx
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx

from perception.engines.graph import GraphBuilder
from perception.engines.metadata import METADATA_KEY, ModelMetadata, Normalization, TensorInfo
from perception.terrain import preprocess

INPUT = "yuv_band"
OUTPUT = "features"
HEIGHT = 36  # band rows (paper: 3@36x484)
WIDTH = 484  # band columns (paper); static: TensorRT-friendly, one engine per band width
CONV1 = (20, 3, 7, 6)  # filters, channels, rows, cols
POOL = (1, 4)  # rows, cols
CONV2 = (100, 20, 6, 5)
RECEPTIVE_FIELD = (12, 25)  # rows, cols of input seen by one feature vector
STRIDE = (1, 4)  # rows, cols between neighbouring feature vectors, in input pixels
SEED = 0
UNTRAINED = (
    "NOT TRAINED: deterministic seeded random orthonormal filters (numpy PCG64 seed 0), zero biases; "
    "the offline unsupervised training comes with `perception train features`"
)


def output_shape(width: int = WIDTH, height: int = HEIGHT) -> list[int]:
    rows = height - CONV1[2] + 1 - CONV2[2] + 1
    cols = (width - CONV1[3] + 1) // POOL[1] - CONV2[3] + 1
    if rows < 1 or cols < 1:
        raise ValueError(f"a {height}x{width} band is smaller than one {RECEPTIVE_FIELD} window")
    return [1, CONV2[0], rows, cols]


def _orthonormal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    n, fan_in = shape[0], int(np.prod(shape[1:]))
    q, r = np.linalg.qr(rng.standard_normal((fan_in, n)))
    q = q * np.sign(np.diag(r))  # unique QR: the same filters whatever LAPACK picks for signs
    return q.T.reshape(shape).astype(np.float32)


def default_weights(seed: int = SEED) -> dict[str, np.ndarray]:
    """The untrained deterministic initialisation: orthonormal filters, unit gain, zero biases."""
    rng = np.random.default_rng(seed)
    return {
        "conv1.weight": _orthonormal(rng, CONV1),
        "conv1.bias": np.zeros(CONV1[0], np.float32),
        "conv2.weight": _orthonormal(rng, CONV2),
        "conv2.bias": np.zeros(CONV2[0], np.float32),
    }


def feature_net_metadata(width: int = WIDTH, height: int = HEIGHT, *, trained_on: str = UNTRAINED,
                         training: dict | None = None) -> ModelMetadata:
    decoder = {
        "precision": "fp32",
        "feature_dim": CONV2[0],
        "receptive_field": list(RECEPTIVE_FIELD),
        "stride": list(STRIDE),
        "preprocess": {
            "steps": "band from the frame; BGR->YUV; x*scale; Y <- LCN(Y); (x-mean)/std",
            "lcn": {"channel": "Y", "kernel": preprocess.LCN_KERNEL, "sigma": preprocess.LCN_SIGMA,
                    "eps": preprocess.LCN_EPS, "where": "before the network (perception.terrain.preprocess)"},
        },
        "architecture": "conv 20@7x6 tanh, maxpool 1x4, conv 100@6x5 tanh (Hadsell et al. JFR 2009)",
    }
    if training is not None:
        decoder["training"] = training
    return ModelMetadata(
        task="terrain_features",
        name="terrain_features",
        inputs=[
            TensorInfo(
                INPUT, [1, 3, height, width], "float32", layout="NCHW", color="yuv",
                normalization=Normalization(scale=preprocess.SCALE, mean=preprocess.MEAN, std=preprocess.STD),
            )
        ],
        outputs=[TensorInfo(OUTPUT, output_shape(width, height), "float32", layout="NCHW", decoding="features")],
        decoder=decoder,
        version="0" if training is None else "1",
        trained_on=trained_on,
        license="Apache-2.0",
    )


def build_feature_net(weights: dict[str, np.ndarray] | None = None, width: int = WIDTH, *, height: int = HEIGHT,
                      trained_on: str | None = None, training: dict | None = None) -> onnx.ModelProto:
    """The feature extractor as an opset-17 static-shape ONNX model, metadata embedded.

    `weights` maps conv1.weight (20,3,7,6), conv1.bias (20), conv2.weight (100,20,6,5), conv2.bias (100); None gives
    the untrained deterministic initialisation (and says so in the metadata). `trained_on` says what trained
    weights saw (the metadata's `trained_on`), `training` its numbers (metadata `decoder["training"]`, JSON-able).
    """
    if weights is None and (trained_on or training):
        raise ValueError("trained_on / training describe trained weights; none were given")
    if trained_on is None:
        trained_on = UNTRAINED if weights is None else "custom weights passed to build_feature_net"
    w = default_weights() if weights is None else weights
    for key, shape in (("conv1.weight", CONV1), ("conv1.bias", CONV1[:1]), ("conv2.weight", CONV2), ("conv2.bias", CONV2[:1])):
        if key not in w:
            raise ValueError(f"weights lack {key}")
        if tuple(np.shape(w[key])) != tuple(shape):
            raise ValueError(f"{key} has shape {np.shape(w[key])}, expected {shape}")
        if not np.all(np.isfinite(w[key])):
            raise ValueError(f"{key} has NaN or infinite values")
    w = {k: np.asarray(v, np.float32) for k, v in w.items()}
    g = GraphBuilder("terrain_features")
    x = g.input(INPUT, [1, 3, height, width])
    x = g.tanh(g.conv(x, w["conv1.weight"], w["conv1.bias"], name="conv1"), name="tanh1")
    x = g.max_pool(x, POOL, name="pool1")
    x = g.tanh(g.conv(x, w["conv2.weight"], w["conv2.bias"], name="conv2"), name="tanh2")
    g.output(x, OUTPUT)
    model = g.build(doc="LAGR terrain feature extractor: 3@12x25 YUV window -> 100-d feature (perception.terrain.feature_net)")
    meta = feature_net_metadata(width, height, trained_on=trained_on, training=training)
    model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    return model


def write_feature_net(path: str | Path, weights: dict[str, np.ndarray] | None = None, width: int = WIDTH, *,
                      trained_on: str | None = None, training: dict | None = None) -> Path:
    """Build, check for TensorRT and save (with metadata) the feature net."""
    from perception.engines.export import check_tensorrt_compatible
    from perception.engines.model_file import embedded_metadata, save_model

    model = build_feature_net(weights, width, trained_on=trained_on, training=training)
    check_tensorrt_compatible(model, project=True)
    meta = embedded_metadata(model, subject=str(path))
    return save_model(model, meta, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perception.terrain.feature_net", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="engines/terrain_features.onnx", help="where to write the model")
    parser.add_argument("--width", type=int, default=WIDTH, help="band width in pixels (static)")
    args = parser.parse_args(argv)
    path = write_feature_net(args.out, width=args.width)
    print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
