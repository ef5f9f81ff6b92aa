from leangym.cli import main

raise SystemExit(main())
