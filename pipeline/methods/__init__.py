"""The methods, by the name ``--method`` gives: each lists its stages in order (``shared.Method``)."""

from pipeline.methods.evol import EVOL
from pipeline.methods.natural import NATURAL

METHODS = {method.name: method for method in (NATURAL, EVOL)}
