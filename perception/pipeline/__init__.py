"""The pipeline: composes the stages per frame; the single place that knows their order."""
from perception.pipeline.core import FrameResult, Pipeline, PipelineConfig, StageTimes

__all__ = ["FrameResult", "Pipeline", "PipelineConfig", "StageTimes"]
