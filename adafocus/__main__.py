from adafocus.cli import main

raise SystemExit(main())
