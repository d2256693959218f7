"""The TensorRT backend's control flow against a stand-in `tensorrt` + `cuda.bindings.runtime` (no GPU here).

The stand-in mirrors only the TensorRT 10 / cuda-python calls the backend makes; its "plan" is JSON of the
ONNX graph's I/O and its "kernel" writes sum(input) into every output element. What is tested is ours:
build -> cache -> load, stale or corrupt plans rebuilt with a WARNING, progress reporting, buffers and copies,
and the factory choosing TensorRT when it is "available". Real TensorRT runs are for a GPU machine.
"""
from __future__ import annotations

import ctypes
import json
import logging
import sys
import types
from types import SimpleNamespace as NS

import numpy as np
import onnx
import pytest

from perception.engines import factory, open_engine
from perception.engines.cache import header_path, read_header, write_plan

FAKE_TRT_VERSION = "10.99.0"


def _fake_tensorrt(calls: list[str]):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = FAKE_TRT_VERSION
    severity = NS(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)
    trt.ILogger = type("ILogger", (), {"Severity": severity, "__init__": lambda self: None})
    trt.IProgressMonitor = type("IProgressMonitor", (), {"__init__": lambda self: None})
    trt.MemoryPoolType = NS(WORKSPACE="workspace")
    trt.BuilderFlag = NS(FP16="fp16", INT8="int8")
    trt.TensorIOMode = NS(INPUT="input", OUTPUT="output")
    trt.nptype = lambda dtype: np.dtype(dtype).type

    class Network:
        io: dict = {}
        num_inputs = property(lambda self: sum(1 for v in self.io.values() if v[0] == "input"))

        def get_input(self, i):
            name = [n for n, v in self.io.items() if v[0] == "input"][i]
            return NS(name=name, shape=self.io[name][1])

    class Parser:
        num_errors = 0

        def __init__(self, network, logger):
            self.network = network

        def parse_from_file(self, path):
            graph = onnx.load(path).graph
            dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
            self.network.io = {**{v.name: ("input", dims(v), "float32") for v in graph.input},
                               **{v.name: ("output", dims(v), "float32") for v in graph.output}}
            return True

    class Config:
        progress_monitor = None
        builder_optimization_level = 3

        def __init__(self):
            self.flags = []

        def set_memory_pool_limit(self, pool, size):
            self.workspace = size

        def set_flag(self, flag):
            self.flags.append(flag)

        def create_timing_cache(self, data):
            return NS(serialize=lambda: b"TIMING")

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing = cache

        def get_timing_cache(self):
            return self.timing

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            calls.append("build:" + ",".join(config.flags))
            monitor = config.progress_monitor
            monitor.phase_start("Building engine", None, 2)
            monitor.step_complete("Building engine", 0)
            monitor.step_complete("Building engine", 1)
            monitor.phase_finish("Building engine")
            return json.dumps({"io": network.io}).encode()

    class Context:
        def __init__(self, engine):
            self.engine, self.addresses = engine, {}

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream):
            calls.append("execute")
            io = self.engine.io
            total = sum(np.frombuffer(DEVICE[self.addresses[n]], np.float32).sum() for n in io if io[n][0] == "input")
            for name in (n for n in io if io[n][0] == "output"):
                DEVICE[self.addresses[name]][:] = np.full(len(DEVICE[self.addresses[name]]) // 4, total,
                                                          np.float32).tobytes()
            return True

    class Engine:
        def __init__(self, io):
            self.io, self.names = io, list(io)
            self.num_io_tensors = len(io)

        get_tensor_name = lambda self, i: self.names[i]  # noqa: E731
        get_tensor_mode = lambda self, n: self.io[n][0]  # noqa: E731
        get_tensor_shape = lambda self, n: self.io[n][1]  # noqa: E731
        get_tensor_dtype = lambda self, n: self.io[n][2]  # noqa: E731
        create_execution_context = lambda self: Context(self)  # noqa: E731

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            calls.append("deserialize")
            try:
                return Engine(json.loads(data)["io"])
            except ValueError:
                return None  # what TensorRT does with a foreign or corrupt plan

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, Parser, Runtime
    return trt


DEVICE: dict[int, bytearray] = {}  # fake device memory: handle -> bytes


def _fake_cudart():
    rt = types.ModuleType("cuda.bindings.runtime")
    pinned: dict[int, ctypes.Array] = {}
    ok = 0
    rt.cudaMemcpyKind = NS(cudaMemcpyHostToDevice="h2d", cudaMemcpyDeviceToHost="d2h")
    rt.cudaGetDeviceCount = lambda: (ok, 1)
    rt.cudaGetDeviceProperties = lambda i: (ok, NS(name=b"Fake Orin\0", major=8, minor=7))
    rt.cudaSetDevice = lambda i: (ok,)

    def malloc(n):
        handle = 0x1000 + len(DEVICE)
        DEVICE[handle] = bytearray(n)
        return ok, handle

    def malloc_host(n):
        buf = (ctypes.c_uint8 * n)()
        pinned[ctypes.addressof(buf)] = buf
        return ok, ctypes.addressof(buf)

    def memcpy(dst, src, n, kind, stream):
        if kind == "h2d":
            DEVICE[dst][:n] = ctypes.string_at(src, n)
        else:
            ctypes.memmove(dst, bytes(DEVICE[src][:n]), n)
        return (ok,)

    rt.cudaMalloc, rt.cudaMallocHost, rt.cudaMemcpyAsync = malloc, malloc_host, memcpy
    rt.cudaFree = lambda h: (DEVICE.pop(h), ok)[1:]
    rt.cudaFreeHost = lambda p: (pinned.pop(p), ok)[1:]
    rt.cudaStreamCreate = lambda: (ok, 7)
    rt.cudaStreamSynchronize = rt.cudaStreamDestroy = lambda s: (ok,)
    return rt, pinned


@pytest.fixture
def fake_gpu(monkeypatch):
    """Install the stand-ins; yields (calls made, pinned host allocations still alive)."""
    calls: list[str] = []
    runtime, pinned = _fake_cudart()
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda.bindings, bindings.runtime = bindings, runtime
    for name, module in {"tensorrt": _fake_tensorrt(calls), "cuda": cuda, "cuda.bindings": bindings,
                         "cuda.bindings.runtime": runtime}.items():
        monkeypatch.setitem(sys.modules, name, module)
    DEVICE.clear()
    yield calls, pinned
    DEVICE.clear()


def test_first_open_builds_then_loads_from_the_cache(fake_gpu, tiny_conv, engine_cache, caplog):
    calls, pinned = fake_gpu
    assert factory.tensorrt_status().available
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="perception.engines"):
        engine = open_engine(tiny_conv.path, precision="fp16", progress=False)
    with engine:
        assert (engine.backend, engine.precision, engine.fallback_reason) == ("tensorrt", "fp16", None)
        out = engine.infer({"image": x})["logits"]
        assert out.shape == (1, 2, 8, 8) and np.allclose(out, x.sum(), rtol=1e-5)
        header = read_header(engine.plan_path)
        assert (header.key.trt_version, header.key.compute_capability, header.gpu_name) == (
            FAKE_TRT_VERSION, "sm87", "Fake Orin")
    assert calls == ["build:fp16", "deserialize", "execute"]
    assert not pinned and not DEVICE  # close() freed every pinned and device buffer
    assert "no cached plan yet" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (engine_cache / f"timing-trt{FAKE_TRT_VERSION}-sm87.cache").read_bytes() == b"TIMING"

    calls.clear()
    with open_engine(tiny_conv.path, precision="fp16") as again:
        assert again.plan_path == engine.plan_path
    assert calls == ["deserialize"]  # cached: no second build


def test_a_plan_from_another_tensorrt_is_rebuilt_with_a_warning(fake_gpu, tiny_conv, engine_cache, caplog):
    calls, _ = fake_gpu
    with open_engine(tiny_conv.path) as engine:
        plan = engine.plan_path
    header = read_header(plan)
    old = type(header.key)(**{**header.key.__dict__, "trt_version": "10.0.1"})
    write_plan(plan, b"old plan", type(header)(**{**header.__dict__, "key": old}))
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="perception.engines"), open_engine(tiny_conv.path) as engine:
        assert engine.backend == "tensorrt"
    assert calls == ["build:", "deserialize"]
    assert "built with TensorRT 10.0.1, this machine has 10.99.0" in caplog.text
    assert read_header(plan).key.trt_version == FAKE_TRT_VERSION


def test_a_corrupt_plan_with_a_current_header_is_rebuilt(fake_gpu, tiny_conv, engine_cache, caplog):
    calls, _ = fake_gpu
    with open_engine(tiny_conv.path) as engine:
        plan = engine.plan_path
    plan.write_bytes(b"\x00garbage")  # header still says current
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="perception.engines"), open_engine(tiny_conv.path) as engine:
        x = np.ones((1, 3, 8, 8), np.float32)
        assert np.allclose(engine.infer({"image": x})["logits"], 192.0)
    assert calls == ["deserialize", "build:", "deserialize", "execute"]
    assert "unusable" in caplog.text and "rebuilding" in caplog.text


def test_a_missing_header_means_rebuild(fake_gpu, tiny_conv, engine_cache, caplog):
    calls, _ = fake_gpu
    with open_engine(tiny_conv.path) as engine:
        header_path(engine.plan_path).unlink()
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="perception.engines"), open_engine(tiny_conv.path):
        pass
    assert calls[0] == "build:" and "no header" in caplog.text


def test_qdq_model_is_built_int8_with_fp16(fake_gpu, make_tiny_conv, engine_cache):
    calls, _ = fake_gpu
    model = make_tiny_conv("q.onnx", qdq=True)
    with open_engine(model.path, backend="tensorrt") as engine:
        assert engine.precision == "int8"
    assert calls[0] == "build:int8,fp16"
