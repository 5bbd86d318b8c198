"`python -m fastfit demo|fit ...`: the same as the `fastfit` console script."
from .cli import main

raise SystemExit(main())
