import sys

from genai_sre.cli import main

sys.exit(main())
