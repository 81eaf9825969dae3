"""Election logistics planner for KPU: routes the 14 items to every PPK and PPS over road, river and sea.

The flow reads in one direction, one module per step:
network -> demand -> model -> solve -> plan -> validate -> maps/report.
"""

__version__ = "0.1.0"
