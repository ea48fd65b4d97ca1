"""LightGBM forecasts of forward yield and adverse-event risk: training, the saved artifact, evaluation.

`train_artifact` fits a `ModelArtifact` on the data known at a day; `strategy.forecast.forecast_at` turns
its predictions into the allocator's `MarketForecast`s; `walk_forward` measures it out of sample.
"""

from strategy.models.artifact import ModelArtifact
from strategy.models.errors import ModelError
from strategy.models.evaluation import Evaluation, walk_forward
from strategy.models.training import train_artifact

__all__ = ["Evaluation", "ModelArtifact", "ModelError", "train_artifact", "walk_forward"]
