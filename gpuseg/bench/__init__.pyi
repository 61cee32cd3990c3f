from .pipeline import STAGES, plan
from .suite import run

__all__ = ["STAGES", "plan", "run"]
