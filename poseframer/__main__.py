"""`python -m poseframer ...` is the `poseframer` command."""

import sys

from poseframer.cli import main

sys.exit(main())
