import sys

from dlfa.cli import main

sys.exit(main())
