"""Sample-data generator: a realistic, dirty marketing world in the raw contract tables.

generate_world() builds people, their records in crm/web_form/shop and ~180 days of
events; apply_day() moves that world on by one day. Ground truth goes to the
`generator_truth` schema, which models never read.
"""

from .day import DayError, apply_day
from .world import generate_world

__all__ = ["DayError", "apply_day", "generate_world"]
