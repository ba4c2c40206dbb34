"""The web dashboard: server-rendered pages on the TCP listener only (the Unix socket serves no
pages). ``auth`` decides who may see a page (a session cookie or the bearer token), ``views``
gathers what a page shows from the read model and the read-only store, ``svg`` draws the
equity curve, ``routes`` serves the pages, the live updates and the four operator actions."""
