"""The engine, along the data flow: domain -> data -> strategy -> risk -> execution -> portfolio
-> persistence/audit -> control, wired by kernel."""
