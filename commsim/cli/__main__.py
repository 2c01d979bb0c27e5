"""``python -m commsim.cli``: the command line."""
from commsim.cli import main

main()
