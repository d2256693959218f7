"""One inference interface (Engine) over ONNX Runtime and TensorRT; model metadata; quantization."""
