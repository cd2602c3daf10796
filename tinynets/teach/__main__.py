"""``python -m teach grade ...`` from the grader bundle's ``tool/`` folder (Gradescope),
where tinynets itself is not installed; same as ``python -m tinynets grade ...``."""
import argparse
import sys

from . import grade

parser = argparse.ArgumentParser(prog="python -m teach")
sub = parser.add_subparsers(dest="command", required=True)
grade.add_arguments(sub.add_parser("grade", help="grade a submission", description=grade.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter))
args = parser.parse_args()
sys.exit(grade.run(args))
