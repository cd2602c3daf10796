"""Tools a user calls on a network: ``gradcheck``, ``fold_bn``; and the command line.

``tinynets.tools.cli`` is ``python -m tinynets``; ``classify`` is its classify command.
"""
from .fold import fold_bn, fold_conv_bn
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient, rel_error

__all__ = ["GradcheckResult", "fold_bn", "fold_conv_bn", "gradcheck", "numerical_gradient",
           "rel_error"]
