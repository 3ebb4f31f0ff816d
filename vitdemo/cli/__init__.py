"""`python -m vitdemo ...`: the command line, one module per group of verbs."""
