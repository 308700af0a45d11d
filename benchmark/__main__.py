import os
import sys

from benchmark import cli

code = cli.main()
if cli.EXIT_WITHOUT_TEARDOWN:  # see cli.EXIT_WITHOUT_TEARDOWN
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
sys.exit(code)
