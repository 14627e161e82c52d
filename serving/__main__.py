"""`python -m serving ...` is the `poseframer` command."""

import sys

from serving.cli import main

sys.exit(main())
