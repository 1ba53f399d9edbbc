"""`python -m synevo`: the same command as `synevo`."""

from synevo.cli import main

raise SystemExit(main())
