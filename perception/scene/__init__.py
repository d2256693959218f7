"""scene stage (see DESIGN.md): per-pixel scene parsing at the input resolution (issue 7; docs/scene.md).

    from perception.scene.parser import SceneParser       # ONNX Runtime / TensorRT, any scene model with metadata
    from perception.scene.costs import SceneCostTable     # class name -> Nav2 cost, for the fused map

Training (`perception train scene`, torch) lives in perception.scene.train and .models; data folders in .data;
`perception eval scene` in .evaluate. Importing this package imports nothing heavy.
"""
