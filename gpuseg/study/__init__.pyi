from .protocols import parse_protocols
from .run import DEFAULT_PROTOCOLS, run_study
from .uncertainty import FractionInterval, active_fraction_interval
from .users import User

__all__ = ["DEFAULT_PROTOCOLS", "FractionInterval", "User", "active_fraction_interval", "parse_protocols", "run_study"]
