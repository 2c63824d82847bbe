import sys

from tenantpilot.cli import main

sys.exit(main())
