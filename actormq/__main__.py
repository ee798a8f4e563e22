"""`python -m actormq` runs the command line."""

from actormq.cli import main

main()
