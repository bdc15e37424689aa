from retail.cli import main

raise SystemExit(main())
