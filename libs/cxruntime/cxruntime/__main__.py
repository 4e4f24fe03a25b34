import sys

from cxruntime.cli import main

sys.exit(main())
