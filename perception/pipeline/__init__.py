"""The pipeline: composes the stages per frame; the single place that knows their order."""
from perception.pipeline.core import NOT_BUILT, FrameResult, Pipeline, PipelineConfig, StageTimes

__all__ = ["NOT_BUILT", "FrameResult", "Pipeline", "PipelineConfig", "StageTimes"]
